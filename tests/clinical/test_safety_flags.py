"""Safety flags (issue 5 item 3): PHQ-9 item 9 above 0 raises a suicide-risk Flag whatever the
total and the write says so; C-SSRS moderate/high raise Flags, high blocks dosing until a
physician records a review (nobody else may lift it). Both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clinical.screening_clinic import FHIR_JSON, Clinic, make_clinic, phq9_answers, response
from ehr.clinical.flags import blocks_dosing, flag_kind
from ehr.clinical.safety_flags import REVIEW_EXTENSION, blocking_flags
from ehr.db import unit_of_work

HIGH = {"1": True, "2": True, "3": True, "4": True, "5": False, "6": False}
MODERATE = {"1": True, "2": True, "3": True, "4": False, "5": False, "6": False}
LOW = {"1": True, "2": False, "6": False}


@pytest.fixture
def clinic(app: Any, client: Any, bearer_header: Any) -> Clinic:
    return make_clinic(app, client, bearer_header)


def _blocking(clinic: Clinic) -> list[dict[str, Any]]:
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        return blocking_flags(session, clinic.patient)


def _warnings(created: Any) -> list[dict[str, Any]]:
    return list(json.loads(created.headers.get("X-FHIR-Outcome", "[]")))


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_raises_a_flag_whatever_the_total(clinic: Clinic, item9: int) -> None:
    created = clinic.post(response("phq-9", phq9_answers(item9, item9=item9), clinic.patient))
    assert created.status_code == 201, created.text
    flags = clinic.flags()
    assert [flag_kind(f) for f in flags] == ["phq9-item9-positive"]
    assert flags[0]["status"] == "active" and not blocks_dosing(flags[0])
    assert flags[0]["subject"] == {"reference": f"Patient/{clinic.patient}"}
    # The write's response says so, pointing at item 9.
    warnings = _warnings(created)
    assert len(warnings) == 1 and warnings[0]["severity"] == "warning"
    assert f"Flag/{flags[0]['id']}" in warnings[0]["diagnostics"]
    assert warnings[0]["expression"] == ["QuestionnaireResponse.item[8]"]


def test_warning_in_the_body_when_asked_for(clinic: Clinic) -> None:
    created = clinic.post(response("phq-9", phq9_answers(1, item9=1), clinic.patient),
                          extra={"Prefer": "return=OperationOutcome"})
    assert created.status_code == 201
    issues = created.json()["issue"]
    assert any(i["severity"] == "warning" and "C-SSRS" in i["diagnostics"] for i in issues)


def test_item9_at_zero_raises_nothing_even_when_severe(clinic: Clinic) -> None:
    created = clinic.post(response("phq-9", phq9_answers(24, item9=0), clinic.patient))
    assert created.status_code == 201
    assert clinic.flags() == [] and "X-FHIR-Outcome" not in created.headers


@pytest.mark.parametrize(("answers", "kind", "blocking"), [
    (LOW, None, False), (MODERATE, "cssrs-moderate-risk", False),
    (HIGH, "cssrs-high-risk", True),
    ({"1": False, "2": False, "6": True, "6-recent": True}, "cssrs-high-risk", True),
])
def test_cssrs_levels_raise_flags(clinic: Clinic, answers: dict[str, bool], kind: str | None,
                                  blocking: bool) -> None:
    clinic.submit("cssrs-screener", answers)
    flags = clinic.flags()
    assert [flag_kind(f) for f in flags] == ([kind] if kind else [])
    assert [f["id"] for f in _blocking(clinic)] == [f["id"] for f in flags if blocking]


def test_amending_does_not_raise_the_flag_twice(clinic: Clinic) -> None:
    rid = clinic.submit("cssrs-screener", HIGH)
    body = {**response("cssrs-screener", HIGH, clinic.patient, status="amended"), "id": rid}
    put = clinic.client.put(f"/fhir/QuestionnaireResponse/{rid}", json=body,
                            headers=clinic.headers["tara"])
    assert put.status_code == 200, put.text
    assert len(clinic.flags()) == 1


def _set_status(clinic: Clinic, flag: dict[str, Any], status: str, who: str) -> Any:
    body = {k: v for k, v in flag.items() if k != "meta"}
    body["meta"] = {"tag": flag["meta"]["tag"]}
    body["status"] = status
    return clinic.client.put(f"/fhir/Flag/{flag['id']}", json=body, headers=clinic.headers[who])


@pytest.mark.parametrize("who", ["tara", "nina", "system"])
def test_only_a_physician_may_lift_a_dosing_block(clinic: Clinic, who: str) -> None:
    clinic.submit("cssrs-screener", HIGH)
    [flag] = _blocking(clinic)
    refused = _set_status(clinic, flag, "inactive", who)
    assert refused.status_code == 403, refused.text
    assert [f["id"] for f in _blocking(clinic)] == [flag["id"]]


def test_physician_review_lifts_the_block_and_is_recorded(clinic: Clinic) -> None:
    clinic.submit("cssrs-screener", HIGH)
    [flag] = _blocking(clinic)
    reviewed = _set_status(clinic, flag, "inactive", "doc")
    assert reviewed.status_code == 200, reviewed.text
    assert _blocking(clinic) == []
    body = reviewed.json()
    [review] = [e for e in body["extension"] if e["url"] == REVIEW_EXTENSION]
    parts = {e["url"]: e for e in review["extension"]}
    assert parts["reviewer"]["valueReference"]["reference"] == "Practitioner/doc"
    assert parts["user"]["valueString"] == "doc"
    assert body["period"]["end"] == parts["reviewed"]["valueDateTime"]
    assert blocks_dosing(body)  # the tag stays: the history shows what blocked and who lifted
    records = [(r["interaction"], r["rtype"], r["rid"], r["actor_id"]) for r in clinic.audit()]
    assert ("update", "Flag", flag["id"], "doc") in records


def test_block_is_not_lifted_by_untagging_or_deleting(clinic: Clinic) -> None:
    clinic.submit("cssrs-screener", HIGH)
    [flag] = _blocking(clinic)
    untagged = {k: v for k, v in flag.items() if k != "meta"}
    put = clinic.client.put(f"/fhir/Flag/{flag['id']}", json=untagged,
                            headers=clinic.headers["doc"])
    assert put.status_code == 422, put.text
    deleted = clinic.client.delete(f"/fhir/Flag/{flag['id']}", headers=clinic.headers["doc"])
    assert deleted.status_code == 422, deleted.text
    assert len(_blocking(clinic)) == 1


def test_non_blocking_flag_is_closed_by_the_care_team(clinic: Clinic) -> None:
    clinic.submit("cssrs-screener", MODERATE)
    [flag] = clinic.flags()
    body = {**{k: v for k, v in flag.items() if k != "meta"}, "status": "inactive"}
    put = clinic.client.put(f"/fhir/Flag/{flag['id']}", json=body, headers=clinic.headers["tara"])
    assert put.status_code == 200, put.text


def test_blocking_flags_reads_only_this_patients_active_tagged_flags(
        app: Any, client: Any, bearer_header: Any, clinic: Clinic) -> None:
    other = make_clinic(app, client, bearer_header)
    other.submit("cssrs-screener", HIGH)
    clinic.submit("cssrs-screener", MODERATE)
    assert _blocking(clinic) == []
    assert len(_blocking(other)) == 1
    manual = client.post("/fhir/Flag", headers=FHIR_JSON, json={
        "resourceType": "Flag", "status": "inactive",
        "meta": {"tag": [{"system": "https://ehr-kat.org/fhir/CodeSystem/alert-effect",
                          "code": "blocks-dosing"}]},
        "code": {"text": "old"}, "subject": {"reference": f"Patient/{clinic.patient}"}})
    assert manual.status_code == 201
    assert _blocking(clinic) == []
