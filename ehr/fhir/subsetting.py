"""``_summary`` and ``_elements``: subsets of a resource, marked SUBSETTED as the spec asks."""

from __future__ import annotations

from functools import cache
from typing import Any

from ehr.fhir.resource_types import model_class

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def _element_flags(rtype: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, from the model metadata."""
    summary: set[str] = set()
    required: set[str] = set()
    for name, info in model_class(rtype).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        key = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(key)
        if extra.get("element_required"):
            required.add(key)
    return frozenset(summary), frozenset(required)


def _mark(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    rtype = str(resource.get("resourceType"))
    if mode in ("false", "", None):
        return resource
    summary, required = _element_flags(rtype)
    if mode == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        keep = {*_ALWAYS, "text", *required}
        out = {k: v for k, v in resource.items() if k in keep}
    else:  # "true"
        keep = {*_ALWAYS, *summary, *required}
        out = {k: v for k, v in resource.items() if k in keep or k.lstrip("_") in keep}
    return _mark(out)


def select_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    _, required = _element_flags(str(resource.get("resourceType")))
    keep = {*_ALWAYS, *required, *(e.split(".")[0] for e in elements)}
    return _mark({k: v for k, v in resource.items() if k in keep or k.lstrip("_") in keep})
