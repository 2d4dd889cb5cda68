"""``ehr db upgrade`` publishes the shipped definitions once: a second run adds no version."""

from __future__ import annotations

from typing import Any

from ehr.clinical.definitions import shipped_definitions
from ehr.clinical.screening_checklist import CHECKLIST_URL
from ehr.fhir.definitions_loader import publish_definitions


def test_publish_is_idempotent_and_searchable(app: Any, client: Any) -> None:
    shipped = shipped_definitions()
    first = publish_definitions(app.state.engine, app.state.pipeline)
    assert (first.written, first.unchanged) == (len(shipped), 0)
    again = publish_definitions(app.state.engine, app.state.pipeline)
    assert (again.written, again.unchanged) == (0, len(shipped))
    found = client.get(f"/fhir/Questionnaire?url={CHECKLIST_URL}").json()
    assert found["total"] == 1
    checklist = found["entry"][0]["resource"]
    assert checklist["meta"]["versionId"] == "1"
    assert {i["linkId"] for i in checklist["item"]} >= {"blood-pressure", "pregnancy-lactation"}
    # A changed definition is written as a new version of the same resource.
    changed = [{**r, "title": "Changed"} if r.get("url") == CHECKLIST_URL else r
               for r in shipped]
    assert publish_definitions(app.state.engine, app.state.pipeline, changed).written == 1
    assert client.get("/fhir/Questionnaire/medical-screening-checklist").json()["meta"][
        "versionId"] == "2"


def _link_ids(items: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for item in items:
        found.append(item["linkId"])
        found.extend(_link_ids(item.get("item") or []))
    return found


def test_every_shipped_questionnaire_has_unique_link_ids() -> None:
    # FHIR que-2: linkIds are unique within a Questionnaire, groups included.
    for definition in shipped_definitions():
        if definition["resourceType"] == "Questionnaire":
            ids = _link_ids(definition.get("item") or [])
            assert len(ids) == len(set(ids)), definition["url"]
