"""The bulk-exclusion predicate $everything and $export call for every record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ehr.clinical.notes.exclusion import excluded_from_bulk, excluded_from_bulk_text

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def labelled(rtype: str, *codes: str) -> dict[str, Any]:
    return {"resourceType": rtype,
            "meta": {"security": [{"system": ACT, "code": c} for c in codes]}}


@pytest.mark.parametrize(("resource", "excluded"), [
    (labelled("DocumentReference", "PSYTHPN"), True),
    (labelled("Provenance", "PSYTHPN"), True),
    (labelled("DocumentReference", "SUD"), True),
    (labelled("Composition", "42CFRPart2"), True),
    (labelled("Observation", "SUD"), False),  # Part 2 data, not a counselling note
    (labelled("DocumentReference", "PSY"), False),
    (labelled("DocumentReference"), False),
    ({"resourceType": "Patient"}, False),
])
def test_excluded_from_bulk(resource: dict[str, Any], excluded: bool) -> None:
    assert excluded_from_bulk(resource) is excluded
    text = json.dumps(resource, separators=(",", ":"))
    assert excluded_from_bulk_text(text) is excluded
