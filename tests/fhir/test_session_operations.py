"""The session operations are registered, listed in the CapabilityStatement, and only the
REMS form answers text/html."""

from __future__ import annotations

from typing import Any

from ehr.fhir.operations import default_operations

NAMES = {"record-vitals", "monitoring-schedule", "discharge", "rems-form", "rems-overdue"}


def test_registered() -> None:
    registry = default_operations()
    assert {op.name for op in registry.all()} >= NAMES
    assert registry.find("record-vitals", "instance", "Encounter") is not None
    assert registry.find("record-vitals", "instance", "Patient") is None
    assert registry.find("rems-overdue", "system", None) is not None
    assert registry.serves_html("rems-form") and not registry.serves_html("discharge")


def test_capability_lists_them(client: Any) -> None:
    text = client.get("/fhir/metadata").text
    for name in NAMES:
        assert name in text


def test_html_only_where_offered(client: Any) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    response = client.get(f"/fhir/Encounter/{missing}/$monitoring-schedule?_format=html")
    assert response.status_code == 406
    response = client.get(f"/fhir/Encounter/{missing}/$rems-form?_format=html")
    assert response.status_code == 404
