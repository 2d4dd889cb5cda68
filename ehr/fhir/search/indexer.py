"""Index values of one resource, read straight from its JSON dict (no model parsing).

The element's FHIR data type is recognised from its shape (a CodeableConcept has ``coding`` or
``text``, a Period ``start``/``end``, ...), which is what lets a choice path like
``effective[x]`` index whichever variant is present. Values that do not parse (a free-text
``onsetString`` under a date parameter) are skipped: the index never refuses a resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from typing import Any

from ehr.dates import parse_range, period_range
from ehr.fhir.search.params import RESOURCE_TYPES, SearchParam, search_params_for
from ehr.fhir.search.text import normalise
from ehr.store.index_writer import IndexValues
from ehr.store.tables import CONSENT_PROVISION_TYPE

_SEGMENT = re.compile(r"^([A-Za-z]+(?:\[x\])?)(?:\((\w+)=([\w\-]+)\))?$")
_REF_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_NAME_PARTS = ("family", "given", "text", "prefix", "suffix")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")

Segment = tuple[str, bool, str | None, str | None]  # name, is_choice, filter key, filter value


@cache
def _compile(path: str) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for raw in path.split("."):
        match = _SEGMENT.match(raw)
        if match is None:
            raise ValueError(f"unsupported search path segment {raw!r} in {path!r}")
        name, key, value = match.groups()
        choice = name.endswith("[x]")
        out.append((name[:-3] if choice else name, choice, key, value))
    return tuple(out)


def _walk(node: Any, segments: tuple[Segment, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, segments)
        return
    if not segments:
        if node is not None:
            yield node
        return
    if not isinstance(node, dict):
        return
    name, choice, key, wanted = segments[0]
    if choice:
        children = [v for k, v in node.items()
                    if k.startswith(name) and len(k) > len(name) and k[len(name)].isupper()]
    else:
        children = [node.get(name)]
    for child in children:
        for item in child if isinstance(child, list) else [child]:
            if key is not None and not (isinstance(item, dict) and item.get(key) == wanted):
                continue
            yield from _walk(item, segments[1:])


def values_at(resource: dict[str, Any], param: SearchParam) -> Iterator[Any]:
    for path in param.paths:
        yield from _walk(resource, _compile(path))


def index_values(rtype: str, resource: dict[str, Any]) -> IndexValues:
    """Every index row the current version of ``resource`` needs."""
    out = IndexValues()
    for param in search_params_for(rtype):
        if param.builtin:
            continue
        if rtype == "Patient" and param.name == "deceased":
            out.tokens.append((param.name, None, _deceased(resource), None))
            continue
        for value in values_at(resource, param):
            _ADD[param.type](out, param, value)
    if rtype == "Consent":
        _add_provision_type(out, resource)
    return out


def _add_provision_type(out: IndexValues, resource: dict[str, Any]) -> None:
    provision = resource.get("provision")
    kind = provision.get("type") if isinstance(provision, dict) else None
    if isinstance(kind, str):
        out.tokens.append((CONSENT_PROVISION_TYPE, None, kind, None))


def _deceased(resource: dict[str, Any]) -> str:
    # R4: Patient.deceased.exists() and Patient.deceased != false; absent counts as false.
    if "deceasedDateTime" in resource:
        return "true"
    return "true" if resource.get("deceasedBoolean") is True else "false"


def _add_string(out: IndexValues, param: SearchParam, value: Any) -> None:
    parts: list[str] = []
    if isinstance(value, str):
        parts.append(value)
    elif isinstance(value, dict):
        is_name = "family" in value or "given" in value
        keys: tuple[str, ...] = _NAME_PARTS if is_name else _ADDRESS_PARTS
        if "family" not in value and "given" not in value and "city" not in value:
            keys = _NAME_PARTS + _ADDRESS_PARTS
        for key in keys:
            item = value.get(key)
            parts.extend(i for i in (item if isinstance(item, list) else [item])
                         if isinstance(i, str))
        if "given" in value or "family" in value:
            given = value.get("given") or []
            combined = " ".join([*given, value.get("family") or ""]).strip()
            if combined:
                parts.append(combined)
    for part in parts:
        norm = normalise(part)
        if norm:
            out.strings.append((param.name, norm, part))


def _add_token(out: IndexValues, param: SearchParam, value: Any) -> None:
    name = param.name
    if isinstance(value, bool):
        out.tokens.append((name, None, "true" if value else "false", None))
    elif isinstance(value, str):
        out.tokens.append((name, None, value, None))
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "value" not in value):
            for coding in value.get("coding") or []:
                if isinstance(coding, dict):
                    _add_coding(out, name, coding)
            if isinstance(value.get("text"), str):
                out.tokens.append((name, None, None, normalise(value["text"]) or None))
        elif "value" in value:
            # Identifier (system|value) or ContactPoint (phone|555...): same row shape.
            text = (value.get("type") or {}).get("text") if isinstance(value.get("type"),
                                                                        dict) else None
            out.tokens.append((name, value.get("system"), str(value["value"]),
                               normalise(text) if isinstance(text, str) else None))
        elif "code" in value or "system" in value:
            _add_coding(out, name, value)


def _add_coding(out: IndexValues, name: str, coding: dict[str, Any]) -> None:
    display = coding.get("display")
    out.tokens.append((name, coding.get("system"), coding.get("code"),
                       normalise(display) if isinstance(display, str) else None))


def _add_date(out: IndexValues, param: SearchParam, value: Any) -> None:
    try:
        if isinstance(value, str):
            out.dates.append((param.name, *parse_range(value)))
        elif isinstance(value, dict) and ("start" in value or "end" in value):
            out.dates.append((param.name, *period_range(value.get("start"), value.get("end"))))
        elif isinstance(value, dict) and ("event" in value or "repeat" in value):
            for event in value.get("event") or []:
                out.dates.append((param.name, *parse_range(event)))
            bounds = (value.get("repeat") or {}).get("boundsPeriod")
            if isinstance(bounds, dict):
                out.dates.append((param.name,
                                  *period_range(bounds.get("start"), bounds.get("end"))))
    except (ValueError, TypeError):
        return


def parse_reference(text: str) -> tuple[str | None, str | None, str | None]:
    """(target_type, target_id, url) of a reference string; all None when not indexable."""
    text = text.strip()
    if not text or text.startswith("#"):
        return None, None, None
    if text.startswith(("urn:uuid:", "urn:oid:")):
        return None, None, text
    is_absolute = "://" in text
    if is_absolute and "|" in text:
        text = text.split("|", 1)[0]  # canonical version suffix
    match = _REF_TAIL.search(text)
    rtype, rid = (match.group(1), match.group(2)) if match else (None, None)
    if rtype is not None and rtype not in RESOURCE_TYPES:
        rtype, rid = None, None
    if is_absolute:
        return rtype, rid, text
    if rtype is None or match is None or match.start() != 0:
        return None, None, None
    return rtype, rid, None


def _add_reference(out: IndexValues, param: SearchParam, value: Any) -> None:
    if isinstance(value, dict):
        identifier = value.get("identifier")
        if isinstance(identifier, dict) and "value" in identifier:
            out.tokens.append((f"{param.name}:identifier", identifier.get("system"),
                               str(identifier["value"]), None))
        text = value.get("reference")
    else:
        text = value
    if not isinstance(text, str):
        return
    rtype, rid, url = parse_reference(text)
    if rtype is None and url is None:
        return
    if param.only_targets and rtype not in param.targets:
        return
    out.references.append((param.name, rtype, rid, url))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


def _add_quantity(out: IndexValues, param: SearchParam, value: Any) -> None:
    if isinstance(value, dict):
        number = _number(value.get("value"))
        if number is not None:
            out.quantities.append((param.name, number, value.get("system"), value.get("code"),
                                   value.get("unit")))


def _add_number(out: IndexValues, param: SearchParam, value: Any) -> None:
    number = _number(value)
    if number is not None:
        out.quantities.append((param.name, number, None, None, None))


def _add_uri(out: IndexValues, param: SearchParam, value: Any) -> None:
    if isinstance(value, str) and value:
        out.uris.append((param.name, value))


_ADD = {
    "string": _add_string,
    "token": _add_token,
    "date": _add_date,
    "reference": _add_reference,
    "quantity": _add_quantity,
    "number": _add_number,
    "uri": _add_uri,
}
