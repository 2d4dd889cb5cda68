"""Metadata-only views of records, for roles that may know a record exists but not its content."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import simplejson

from ehr.store.repository import StoredResource

REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}


def keep_elements(stored: StoredResource, keep: Iterable[str]) -> StoredResource:
    resource = simplejson.loads(stored.content or "{}", use_decimal=True)
    wanted = set(keep)
    out = {k: v for k, v in resource.items() if k in wanted}
    meta = dict(out.get("meta") or {})
    meta["security"] = [*meta.get("security", []), REDACTED]
    out["meta"] = meta
    text = simplejson.dumps(out, use_decimal=True, separators=(",", ":"), ensure_ascii=False)
    return dataclasses.replace(stored, content=text)
