"""Canonical JSON text for stored resources.

Stored text is compact UTF-8 JSON with ``resourceType``, ``id`` and ``meta`` first and every
other key in the order the client sent it. Decimals are parsed as ``Decimal`` and written back
verbatim, so ``1.50`` stays ``1.50`` (FHIR decimals carry their precision).
"""

from __future__ import annotations

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
