"""Turning one search parameter value (per FHIR type and modifier) into store criteria."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ehr.dates import DAY, parse_range
from ehr.errors import BadRequest
from ehr.fhir.search.indexer import parse_reference
from ehr.fhir.search.params import RESOURCE_TYPES, SearchParam
from ehr.fhir.search.text import normalise
from ehr.store.criteria import (
    Criterion,
    DateMatch,
    IndexKind,
    LastUpdatedMatch,
    Missing,
    Op,
    QuantityMatch,
    ReferenceMatch,
    StringMatch,
    TokenMatch,
    TokenText,
    UriMatch,
)

_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$", re.S)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_ESCAPES = {"\\,": ",", "\\|": "|", "\\$": "$", "\\\\": "\\"}


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` unless it is escaped with a backslash (escapes are kept)."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\[,|$\\]", lambda m: _ESCAPES[m.group(0)], text)


def bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid search parameter {name!r}: {message}", expression=[name])


def missing(name: str, param: SearchParam, value: str) -> Missing:
    if value not in ("true", "false"):
        raise bad(name, ":missing takes true or false")
    kind: IndexKind = "quantity" if param.type == "number" else param.type
    return Missing(param.name, kind, value == "true")


def string_value(name: str, param: SearchParam, modifier: str | None, value: str) -> Criterion:
    text = unescape(value)
    if not text:
        raise bad(name, "empty value")
    if modifier == "exact":
        return StringMatch(param.name, text, "exact", normalise(text))
    norm = normalise(text)
    return StringMatch(param.name, norm, "contains" if modifier == "contains" else "start")


def token_value(name: str, param: SearchParam, modifier: str | None, value: str) -> Criterion:
    """``code``, ``system|code``, ``|code`` or ``system|`` (``:text`` searches display text)."""
    if modifier == "text":
        return TokenText(param.name, normalise(unescape(value)))
    target = f"{param.name}:identifier" if modifier == "identifier" else param.name
    parts = split_unescaped(value, "|")
    if len(parts) == 1:
        code = unescape(parts[0])
        if not code:
            raise bad(name, "empty token")
        return TokenMatch(target, code)
    if len(parts) != 2:
        raise bad(name, "a token is [system|]code")
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise bad(name, "empty token")
    if not system:
        return TokenMatch(target, code, no_system=True)
    return TokenMatch(target, code or None, system)


def _prefixed(value: str) -> tuple[Op | str, str]:
    match = _PREFIX.match(value)
    assert match is not None
    return match.group(1) or "eq", match.group(2)


def _approximate(low: int, high: int, now: int) -> tuple[int, int]:
    # ap: widen by 10% of the distance between the value and now, but at least a day.
    delta = max(DAY, abs(now - low) // 10)
    return low - delta, high + delta


def date_value(name: str, param: SearchParam, value: str, now: int) -> Criterion:
    prefix, text = _prefixed(value)
    try:
        low, high = parse_range(text)
    except ValueError as exc:
        raise bad(name, f"{text!r} is not a FHIR date (YYYY[-MM[-DD[Thh:mm[:ss]]]][zone])") \
            from exc
    op: Op = prefix  # type: ignore[assignment]
    if prefix == "ap":
        op = "overlap"
        low, high = _approximate(low, high, now)
    if param.name == "_lastUpdated":
        return LastUpdatedMatch(op, low, high)
    return DateMatch(param.name, op, low, high)


def _number_range(name: str, prefix: str, text: str) -> tuple[Op, float, float]:
    if not _NUMBER.match(text):
        raise bad(name, f"{text!r} is not a number")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise bad(name, f"{text!r} is not a number") from exc
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if prefix == "ap":
        spread = abs(number) / 10 or Decimal(10) ** exponent / 2
        return "overlap", float(number - spread), float(number + spread)
    if prefix in ("eq", "ne"):
        # Implicit precision: 5.4 stands for [5.35, 5.45).
        half = Decimal(10) ** exponent / 2
        return prefix, float(number - half), float(number + half)  # type: ignore[return-value]
    return prefix, float(number), float(number)  # type: ignore[return-value]


def number_value(name: str, param: SearchParam, value: str) -> Criterion:
    prefix, text = _prefixed(value)
    op, low, high = _number_range(name, prefix, text)
    return QuantityMatch(param.name, op, low, high)


def quantity_value(name: str, param: SearchParam, value: str) -> Criterion:
    """``[prefix]number``, ``[prefix]number|system|code`` or ``[prefix]number||code``."""
    parts = split_unescaped(value, "|")
    if len(parts) not in (1, 3):
        raise bad(name, "a quantity is [prefix]number[|system|code]")
    prefix, text = _prefixed(parts[0])
    op, low, high = _number_range(name, prefix, text)
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    return QuantityMatch(param.name, op, low, high, system, code)


def reference_value(
    name: str, param: SearchParam, type_modifier: str | None, value: str
) -> Criterion:
    text = unescape(value).strip()
    if not text:
        raise bad(name, "empty reference")
    if type_modifier is not None:
        if "/" in text:
            raise bad(name, f"with :{type_modifier} the value is an id")
        return ReferenceMatch(param.name, text, (type_modifier,))
    if "://" in text or text.startswith("urn:"):
        return ReferenceMatch(param.name, url=parse_reference(text)[2] or text)
    if "/" in text:
        rtype, rid, _ = parse_reference(text)
        if rtype is None or rid is None:
            raise bad(name, f"{text!r} is not Type/id")
        if param.targets and rtype not in param.targets:
            raise bad(name, f"{rtype} is not a target of {param.name}")
        return ReferenceMatch(param.name, rid, (rtype,))
    return ReferenceMatch(param.name, text, param.targets)


def uri_value(name: str, param: SearchParam, modifier: str | None, value: str) -> Criterion:
    text = unescape(value)
    if not text:
        raise bad(name, "empty uri")
    mode = modifier if modifier in ("below", "above") else "exact"
    return UriMatch(param.name, text, mode)  # type: ignore[arg-type]


def is_resource_type(name: str) -> bool:
    return name in RESOURCE_TYPES
