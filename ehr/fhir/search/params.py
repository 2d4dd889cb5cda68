"""Search parameters per resource type: the explicit R4 definitions plus generic ones.

Every type gets the common ``_id``/``_lastUpdated``/``_tag``/``_profile``/``_security``/
``_source``. Types without explicit definitions get ``patient``/``subject`` reference
parameters when their model has such a top-level element (introspected once, from the R4B
models), so a compartment-style ``?patient=`` works on every clinical type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.fhir.search.definitions import DEFINITIONS

ParamType = Literal["string", "token", "date", "reference", "quantity", "number", "uri"]
_TYPES = frozenset({"string", "token", "date", "reference", "quantity", "number", "uri"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: ParamType
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    # Only references to ``targets`` are indexed (FHIRPath ``where(resolve() is X)``).
    only_targets: bool = False
    documentation: str = ""
    # Served from the resource row itself (_id, _lastUpdated) instead of an index table.
    builtin: bool = False


# The R4 type list lives with the models it names; re-exported for the search package.
RESOURCE_TYPES: frozenset[str] = R4_RESOURCE_TYPES

COMMON_PARAMS: tuple[SearchParam, ...] = (
    SearchParam("_id", "token", (), documentation="Logical id of the resource", builtin=True),
    SearchParam("_lastUpdated", "date", (), documentation="When the resource version changed",
                builtin=True),
    SearchParam("_tag", "token", ("meta.tag",), documentation="Tags in Resource.meta.tag"),
    SearchParam("_profile", "uri", ("meta.profile",),
                documentation="Profiles in Resource.meta.profile"),
    SearchParam("_security", "token", ("meta.security",),
                documentation="Security labels in Resource.meta.security"),
    SearchParam("_source", "uri", ("meta.source",), documentation="Resource.meta.source"),
)


def _parse_line(rtype: str, line: str) -> SearchParam:
    parts = line.split()
    if len(parts) not in (3, 4) or parts[1] not in _TYPES:
        raise ValueError(f"bad search parameter definition for {rtype}: {line!r}")
    name, ptype, path_text = parts[:3]
    targets_text = parts[3] if len(parts) == 4 else ""
    only = targets_text.startswith("=")
    targets = tuple(t for t in targets_text.lstrip("=").split(",") if t)
    paths = tuple(path_text.split("|"))
    doc = " | ".join(f"{rtype}.{p}" for p in paths)
    if only:
        doc += f" (references to {', '.join(targets)})"
    return SearchParam(name, ptype, paths, targets, only, doc)  # type: ignore[arg-type]


@cache
def _model_reference_fields(rtype: str) -> frozenset[str]:
    """Top-level ``patient``/``subject`` elements of type Reference in the R4B model."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        fields = get_fhir_model_class(rtype).model_fields
    except (KeyError, ValueError, AttributeError, ImportError):
        return frozenset()
    found = set()
    for name in ("patient", "subject"):
        field = fields.get(name)
        if field is not None and "Reference" in str(field.annotation):
            found.add(name)
    return frozenset(found)


def _generic_params(rtype: str) -> tuple[SearchParam, ...]:
    fields = _model_reference_fields(rtype)
    out: list[SearchParam] = []
    if "subject" in fields:
        out.append(SearchParam("subject", "reference", ("subject",),
                               documentation=f"{rtype}.subject"))
    if "patient" in fields:
        out.append(SearchParam("patient", "reference", ("patient",), ("Patient",),
                               documentation=f"{rtype}.patient"))
    elif "subject" in fields:
        out.append(SearchParam("patient", "reference", ("subject",), ("Patient",), True,
                               f"{rtype}.subject (references to Patient)"))
    return tuple(out)


@cache
def _params_by_name(rtype: str | None) -> dict[str, SearchParam]:
    params: dict[str, SearchParam] = {p.name: p for p in COMMON_PARAMS}
    if rtype is None:
        return params
    text = DEFINITIONS.get(rtype)
    if text is None:
        specific = _generic_params(rtype)
    else:
        specific = tuple(_parse_line(rtype, ln) for ln in text.splitlines() if ln.strip())
    for param in specific:
        params[param.name] = param
    return params


def search_params_for(rtype: str | None) -> list[SearchParam]:
    """Parameters a search on ``rtype`` accepts (``None``: the system-wide common ones)."""
    if rtype is not None and rtype not in RESOURCE_TYPES:
        return []
    return list(_params_by_name(rtype).values())


def get_param(rtype: str | None, name: str) -> SearchParam | None:
    if rtype is not None and rtype not in RESOURCE_TYPES:
        return None
    return _params_by_name(rtype).get(name)
