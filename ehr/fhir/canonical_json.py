"""Canonical JSON text for stored resources.

Stored text is compact UTF-8 JSON with ``resourceType``, ``id`` and ``meta`` first and every
other key in the order the client sent it. Decimals are parsed as ``Decimal`` and written back
verbatim, so ``1.50`` stays ``1.50`` (FHIR decimals carry their precision).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import simplejson

_HEAD = ("resourceType", "id", "meta")


def dumps(resource: dict[str, Any]) -> str:
    ordered = {k: resource[k] for k in _HEAD if k in resource}
    for key, value in resource.items():
        if key not in ordered:
            ordered[key] = value
    return simplejson.dumps(ordered, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


def dumps_any(value: Any) -> str:
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return simplejson.loads(text, use_decimal=True)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    # Integer arithmetic: a float timestamp would drift by a microsecond on round trips.
    return _EPOCH + timedelta(microseconds=us)


def instant(us: int) -> str:
    """FHIR ``instant`` text for microseconds since the epoch (UTC, microsecond precision)."""
    return to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def http_date(us: int) -> str:
    return to_datetime(us).strftime("%a, %d %b %Y %H:%M:%S GMT")
