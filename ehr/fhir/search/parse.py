"""Query parameters of a FHIR search -> a ``SearchRequest`` the store can execute.

Repeating a parameter ANDs its criteria, commas inside one value OR them. Unknown parameters
and unsupported modifiers are ignored with a warning issue, or refused with ``strict``
(``Prefer: handling=strict``); malformed values are always refused, naming the parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ehr.errors import BadRequest, Issue
from ehr.fhir.search import param_values as pv
from ehr.fhir.search.params import RESOURCE_TYPES, SearchParam, get_param
from ehr.instants import now_us
from ehr.store.criteria import (
    AnyOf,
    Chain,
    Criterion,
    Has,
    IdMatch,
    IncludeSpec,
    Not,
    SortKey,
    SortKind,
)

_SUMMARY = frozenset({"true", "text", "data", "count", "false"})
_TOTAL = frozenset({"none", "estimate", "accurate"})
_IGNORED = frozenset({"_format", "_pretty"})
_MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing"},
    "date": {"missing"},
    "reference": {"missing", "identifier"},
    "quantity": {"missing"},
    "number": {"missing"},
    "uri": {"missing", "below", "above"},
}


@dataclass
class SearchRequest:
    rtype: str | None
    criteria: list[Criterion] = field(default_factory=list)
    count: int = 20
    cursor: str | None = None
    sort: list[SortKey] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str = "accurate"
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    link_params: list[tuple[str, str]] = field(default_factory=list)


class _Unsupported(Exception):
    """A parameter or modifier this server does not support (warning unless strict)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def parse_search(
    rtype: str | None,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
    now: int | None = None,
) -> SearchRequest:
    request = SearchRequest(rtype, count=min(default_count, max_count))
    moment = now_us() if now is None else now
    for key, value in params:
        if key != "_cursor":
            request.link_params.append((key, value))
        try:
            _apply(request, key, value, max_count, moment)
        except _Unsupported as exc:
            if strict:
                raise BadRequest(exc.message, code="not-supported", expression=[exc.name]) \
                    from None
            request.warnings.append(Issue("not-supported", f"{exc.message} (ignored)",
                                          "warning", (exc.name,)))
    return request


def _apply(request: SearchRequest, key: str, value: str, max_count: int, now: int) -> None:
    rtype = request.rtype
    if key in _IGNORED:
        return
    if key == "_cursor":
        request.cursor = value or None
    elif key == "_count":
        if not (value.isascii() and value.isdigit()):
            raise pv.bad(key, "must be a non-negative integer")
        # Clamp by length first: int() refuses numbers of thousands of digits.
        request.count = max_count if len(value) > 9 else min(int(value), max_count)
    elif key == "_sort":
        request.sort = _sort_keys(rtype, value)
    elif key == "_summary":
        if value not in _SUMMARY:
            raise pv.bad(key, f"must be one of {', '.join(sorted(_SUMMARY))}")
        request.summary = value
    elif key == "_elements":
        request.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif key == "_total":
        if value not in _TOTAL:
            raise pv.bad(key, "must be none, estimate or accurate")
        request.total = value
    elif key in ("_include", "_include:iterate", "_include:recurse"):
        request.includes.append(_include(rtype, key, value, reverse=False))
    elif key in ("_revinclude", "_revinclude:iterate", "_revinclude:recurse"):
        request.revincludes.append(_include(rtype, key, value, reverse=True))
    else:
        request.criteria.append(criterion(rtype, key, value, now))


def criterion(rtype: str | None, key: str, value: str, now: int) -> Criterion:
    """The criterion of one ``key=value`` pair (key may carry modifiers, chains, ``_has``)."""
    if key.startswith("_has:"):
        return _has(rtype, key, value, now)
    if "." in key:
        return _chain(rtype, key, value, now)
    name, _, modifier = key.partition(":")
    param = get_param(rtype, name)
    if param is None:
        raise _Unsupported(key, f"Unknown search parameter {name!r} for {rtype or 'system'}")
    mod = modifier or None
    if mod is not None and mod not in _MODIFIERS[param.type] and not (
        param.type == "reference" and mod in RESOURCE_TYPES
    ):
        raise _Unsupported(key, f"Modifier :{mod} is not supported on {name!r}")
    if mod == "missing":
        if param.builtin:
            raise _Unsupported(key, f":missing is not supported on {name!r}")
        return pv.missing(key, param, value)
    if param.name == "_id":
        ids = tuple(pv.unescape(v) for v in pv.split_unescaped(value, ",") if v)
        if not ids:
            raise pv.bad(key, "empty id")
        return Not(IdMatch(ids)) if mod == "not" else IdMatch(ids)
    options = [_value(key, param, mod, v, now) for v in pv.split_unescaped(value, ",")]
    combined: Criterion = options[0] if len(options) == 1 else AnyOf(tuple(options))
    return Not(combined) if mod == "not" else combined


def _value(key: str, param: SearchParam, mod: str | None, value: str, now: int) -> Criterion:
    if param.type == "string":
        return pv.string_value(key, param, mod, value)
    if param.type == "token":
        return pv.token_value(key, param, mod, value)
    if param.type == "date":
        return pv.date_value(key, param, value, now)
    if param.type == "reference":
        if mod == "identifier":
            return pv.token_value(key, param, mod, value)
        return pv.reference_value(key, param, mod, value)
    if param.type == "quantity":
        return pv.quantity_value(key, param, value)
    if param.type == "number":
        return pv.number_value(key, param, value)
    return pv.uri_value(key, param, mod, value)


def _reference_param(rtype: str | None, name: str, key: str) -> SearchParam:
    param = get_param(rtype, name)
    if param is None:
        raise _Unsupported(key, f"Unknown search parameter {name!r} for {rtype or 'system'}")
    if param.type != "reference":
        raise pv.bad(key, f"{name!r} is not a reference parameter")
    return param


def _chain(rtype: str | None, key: str, value: str, now: int) -> Criterion:
    head, _, rest = key.partition(".")
    name, _, type_modifier = head.partition(":")
    param = _reference_param(rtype, name, key)
    if type_modifier and type_modifier not in RESOURCE_TYPES:
        raise pv.bad(key, f"unknown resource type {type_modifier!r}")
    candidates = (type_modifier,) if type_modifier else param.targets or tuple(
        sorted(RESOURCE_TYPES))
    inner_name = rest.split(".", 1)[0].split(":", 1)[0]
    targets = tuple(t for t in candidates if get_param(t, inner_name) is not None)
    if not targets:
        raise _Unsupported(key, f"No target of {name!r} has a search parameter {inner_name!r}")
    return Chain(param.name, tuple((t, criterion(t, rest, value, now)) for t in targets))


def _has(rtype: str | None, key: str, value: str, now: int) -> Criterion:
    parts = key.split(":", 3)
    if len(parts) != 4 or not parts[3]:
        raise pv.bad(key, "expected _has:Type:reference-param:search-param")
    _, source, ref_name, rest = parts
    if source not in RESOURCE_TYPES:
        raise pv.bad(key, f"unknown resource type {source!r}")
    param = _reference_param(source, ref_name, key)
    return Has(source, param.name, criterion(source, rest, value, now))


def _sort_keys(rtype: str | None, value: str) -> list[SortKey]:
    keys: list[SortKey] = []
    for raw in value.split(","):
        item = raw.strip()
        descending = item.startswith("-")
        name = item.lstrip("-")
        param = get_param(rtype, name)
        if param is None or param.type not in ("string", "token", "date", "reference",
                                               "quantity", "number", "uri"):
            raise pv.bad("_sort", f"cannot sort on {name!r}")
        kind: SortKind
        if name == "_id":
            kind = "id"
        elif name == "_lastUpdated":
            kind = "lastUpdated"
        else:
            kind = "quantity" if param.type == "number" else param.type
        keys.append(SortKey(param.name, kind, descending))
    return keys


def _include(rtype: str | None, key: str, value: str, *, reverse: bool) -> IncludeSpec:
    if value == "*" and not reverse and rtype is not None:
        return IncludeSpec(rtype, None)
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCE_TYPES:
        raise pv.bad(key, "expected Type:param[:targetType]")
    source, name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in RESOURCE_TYPES:
        raise pv.bad(key, f"unknown target type {target!r}")
    if name == "*":
        if reverse:
            raise pv.bad(key, "_revinclude does not take *")
        return IncludeSpec(source, None, target)
    param = get_param(source, name)
    if param is None or param.type != "reference":
        raise pv.bad(key, f"{source} has no reference parameter {name!r}")
    return IncludeSpec(source, param.name, target)
