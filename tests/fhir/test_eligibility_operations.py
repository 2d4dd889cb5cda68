"""``$eligibility-decision`` and ``$eligibility`` over HTTP (issue 5 item 4): who may decide,
the signature, what the protocol forbids, expiry, and the audit trail."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from clinical.eligibility_clinic import Clinic, checklist, make_clinic, parameters
from ehr_testing import sealed

from ehr import instants
from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.clinical.eligibility import DECISION_CODE, ELIGIBILITY_SYSTEM, STATUS_SYSTEM
from ehr.clinical.flags import build_flag
from ehr.db import unit_of_work

DAY_US = 86_400 * 1_000_000
T0 = instants.from_datetime(instants.EPOCH + timedelta(days=20_000))  # 2024-10-05


@pytest.fixture
def clinic(app: Any, client: Any, bearer_header: Any) -> Clinic:
    return make_clinic(app, client, bearer_header)


def events(clinic: Clinic, interaction: str) -> list[Any]:
    with unit_of_work(sealed(clinic.app.state.engine, clinic.app)) as session:
        return [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                if r.interaction == interaction]


def test_none_until_a_decision_and_reads_are_audited(clinic: Clinic) -> None:
    result = clinic.status("nina")
    assert result["status"] == "none"
    assert "decision" not in result and "expires" not in result
    [event] = events(clinic, "operation:eligibility")
    assert (event.actor_id, event.rtype, event.rid, event.status) == \
        ("nina", "Patient", clinic.patient, 200)
    assert clinic.patient in event.body


def test_physician_records_a_signed_decision(clinic: Clinic) -> None:
    qr = clinic.screen()
    response = clinic.decide("eligible")
    assert response.status_code == 201, response.text
    out = parameters(response.json())
    decision, provenance = out["observation"], out["provenance"]
    assert decision["code"]["coding"][0] == {
        "system": ELIGIBILITY_SYSTEM, "code": DECISION_CODE,
        "display": "Eligibility for ketamine-assisted therapy"}
    assert decision["valueCodeableConcept"]["coding"][0]["code"] == "eligible"
    assert decision["valueCodeableConcept"]["coding"][0]["system"] == STATUS_SYSTEM
    assert decision["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr}/_history/1"}]
    assert decision["performer"][0]["reference"] == "Practitioner/doc"
    start = instants.from_datetime(_parse(decision["effectivePeriod"]["start"]))
    end = instants.from_datetime(_parse(decision["effectivePeriod"]["end"]))
    assert end - start == 90 * DAY_US
    target = f"Observation/{decision['id']}/_history/1"
    assert provenance["target"] == [{"reference": target},
                                    {"reference": f"Patient/{clinic.patient}"}]
    [signature] = provenance["signature"]
    assert signature["type"] == [{"system": "urn:iso-astm:E1762-95:2013",
                                  "code": "1.2.840.10065.1.12.1.1",
                                  "display": "Author's Signature"}]
    assert signature["who"]["reference"] == "Practitioner/doc"
    assert signature["when"] == decision["effectivePeriod"]["start"]
    # The signature data is the server's re-authentication assertion for this user.
    header = base64.b64decode(signature["data"]).split(b".")[0]
    assert b"reauth" in base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4))
    assert response.headers["location"].endswith(target)

    now = clinic.status("nina")
    assert now["status"] == "eligible"
    assert now["decision"] == {"reference": target}
    assert now["decided"] == decision["effectivePeriod"]["start"]
    assert now["expires"] == decision["effectivePeriod"]["end"]
    # The decision and its signature are readable FHIR resources like any other.
    assert clinic.client.get(f"/fhir/{target}", headers=clinic.headers["nina"]).status_code == 200
    signed = clinic.client.get(f"/fhir/Provenance?target=Observation/{decision['id']}",
                               headers=clinic.headers["nina"]).json()
    assert signed["total"] == 1

    [op] = events(clinic, "operation:eligibility-decision")
    assert (op.actor_id, op.rid, op.status) == ("doc", clinic.patient, 200)
    assert "eligible" in op.body and target in op.body
    writes = [e for e in events(clinic, "create") if e.rtype in ("Observation", "Provenance")]
    assert sorted(e.rtype for e in writes) == ["Observation", "Provenance"]
    assert all(e.actor_id == "doc" for e in writes)


@pytest.mark.parametrize("who", ["nina", "tara", "cora"])
def test_non_physicians_cannot_decide(clinic: Clinic, who: str) -> None:
    clinic.screen()
    response = clinic.decide("eligible", who)
    assert response.status_code == 403, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert clinic.status()["status"] == "none"
    [refused] = events(clinic, "operation:eligibility-decision")
    assert (refused.actor_id, refused.status, refused.outcome) == (who, 403, "denied")


def test_system_clients_cannot_decide(clinic: Clinic) -> None:
    clinic.screen()
    assert clinic.decide("eligible", "system", assertion=None).status_code == 403
    assert clinic.status()["status"] == "none"


def test_the_signing_assertion_is_required_and_single_use(clinic: Clinic) -> None:
    clinic.screen()
    assert clinic.decide("eligible", assertion=None).status_code == 403
    assert clinic.decide("eligible", assertion="not-a-jwt").status_code == 403
    assert clinic.decide("eligible", assertion=clinic.reauth("doc2")).status_code == 403
    assert clinic.decide("eligible",
                         assertion=clinic.reauth(action="note-signing")).status_code == 403
    # An access token is not a signing assertion.
    token = clinic.headers["doc"]["Authorization"].split()[1]
    assert clinic.decide("eligible", assertion=token).status_code == 403
    assert clinic.status()["status"] == "none"
    once = clinic.reauth()
    assert clinic.decide("eligible", assertion=once).status_code == 201
    again = clinic.decide("not-eligible", justification="changed my mind", assertion=once)
    assert again.status_code == 403
    assert "already used" in again.text
    assert clinic.status()["status"] == "eligible"


def test_a_refused_decision_does_not_spend_the_assertion(clinic: Clinic) -> None:
    clinic.screen(pregnancy=True)
    assertion = clinic.reauth()
    assert clinic.decide("eligible", assertion=assertion).status_code == 422
    assert clinic.decide("not-eligible", assertion=assertion).status_code == 201


@pytest.mark.parametrize("status", ["eligible", "needs-review"])
def test_a_hard_stop_can_never_become_eligible(clinic: Clinic, status: str) -> None:
    clinic.screen(pregnancy=True, med_opioid=True)
    response = clinic.decide(status, justification="benefit outweighs risk, I insist")
    assert response.status_code == 422, response.text
    assert "Hard stop 'pregnancy'" in response.text
    assert clinic.status()["status"] == "none"
    recorded = clinic.decide("not-eligible")
    assert recorded.status_code == 201, recorded.text
    result = clinic.status()
    assert result["status"] == "not-eligible"
    assert "Pregnancy" in result["reason"]
    assert "Interacting medication: opioid" in result["reason"]


def test_review_items_need_a_justification_to_decide_eligible(clinic: Clinic) -> None:
    clinic.screen(systolic=150, diastolic=95)
    refused = clinic.decide("eligible")
    assert refused.status_code == 422
    assert "justification is required" in refused.text
    assert clinic.decide("eligible", justification="   ").status_code == 422
    ok = clinic.decide("eligible", justification="BP controlled on repeat; cardiology agrees")
    assert ok.status_code == 201, ok.text
    decision = parameters(ok.json())["observation"]
    assert [c["code"]["coding"][0]["code"] for c in decision["component"]] == \
        ["elevated-blood-pressure"]
    assert decision["note"][0]["text"] == "BP controlled on repeat; cardiology agrees"
    result = clinic.status()
    assert result["status"] == "eligible"
    assert "Physician's justification: BP controlled on repeat; cardiology agrees" in \
        result["reason"]


def test_needs_review_and_not_eligible_without_a_hard_stop(clinic: Clinic) -> None:
    clinic.screen(recreational_ketamine_pcp=True)
    assert clinic.decide("needs-review").status_code == 201
    assert clinic.status()["status"] == "needs-review"
    assert clinic.decide("not-eligible").status_code == 422  # no hard stop: say why
    assert clinic.decide("not-eligible", justification="active use").status_code == 201
    assert clinic.status()["status"] == "not-eligible"


def test_no_decision_without_a_completed_checklist(clinic: Clinic) -> None:
    clinic.screen(status="in-progress", omit=("pregnancy",))
    response = clinic.decide("eligible")
    assert response.status_code == 409
    assert "checklist" in response.text


def test_a_completed_checklist_must_answer_every_item(clinic: Clinic) -> None:
    body = checklist(clinic.patient, omit=("pregnancy", "breastfeeding"), systolic=400)
    response = clinic.client.post("/fhir/QuestionnaireResponse", json=body,
                                  headers=clinic.headers["tara"])
    assert response.status_code == 422
    text = response.text
    assert "'pregnancy'" in text and "'breastfeeding'" in text and "400" in text


def test_bad_parameters(clinic: Clinic) -> None:
    clinic.screen()
    assert clinic.decide("maybe").status_code == 400
    assert clinic.decide("expired").status_code == 400
    url = f"/fhir/Patient/{clinic.patient}/$eligibility-decision"
    assert clinic.client.post(url, json={"resourceType": "Patient"},
                              headers=clinic.headers["doc"]).status_code == 400
    assert clinic.client.get(url, headers=clinic.headers["doc"]).status_code == 405
    assert clinic.decide("eligible", patient="nobody").status_code == 404


def test_outside_the_care_team_nothing_is_revealed(clinic: Clinic) -> None:
    clinic.screen()
    assert clinic.decide("eligible", "far").status_code == 404
    response = clinic.client.get(f"/fhir/Patient/{clinic.patient}/$eligibility",
                                 headers=clinic.headers["far"])
    assert response.status_code == 404
    response = clinic.client.get(f"/fhir/Patient/{clinic.patient}/$eligibility",
                                 headers=clinic.headers["cora"])
    assert response.status_code == 403


def _decision_body(clinic: Clinic, status: str = "eligible") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": ELIGIBILITY_SYSTEM, "code": DECISION_CODE}]},
            "subject": {"reference": f"Patient/{clinic.patient}"},
            "effectivePeriod": {"start": "2026-01-01T00:00:00Z",
                                "end": "2099-01-01T00:00:00Z"},
            "valueCodeableConcept": {"coding": [{"system": STATUS_SYSTEM, "code": status}]}}


@pytest.mark.parametrize("who", ["nina", "doc", "system"])
def test_no_other_way_to_write_a_decision(clinic: Clinic, who: str) -> None:
    clinic.screen(pregnancy=True)
    forged = clinic.client.post("/fhir/Observation", json=_decision_body(clinic),
                                headers=clinic.headers[who])
    assert forged.status_code == 422, forged.text
    assert "$eligibility-decision" in forged.text
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "request": {"method": "POST", "url": "Observation"},
        "resource": _decision_body(clinic)}]}
    assert clinic.client.post("/fhir", json=bundle,
                              headers=clinic.headers[who]).status_code == 422
    assert clinic.status()["status"] == "none"


def test_recorded_decisions_cannot_be_changed_or_forged_signed(clinic: Clinic) -> None:
    clinic.screen(pregnancy=True)
    decision = parameters(clinic.decide("not-eligible").json())["observation"]
    url = f"/fhir/Observation/{decision['id']}"
    flipped = {**_decision_body(clinic), "id": decision["id"]}
    assert clinic.client.put(url, json=flipped, headers=clinic.headers["doc"]).status_code == 422
    recoded = {**flipped, "code": {"text": "something else"}}
    assert clinic.client.put(url, json=recoded, headers=clinic.headers["nina"]).status_code \
        == 422
    assert clinic.client.delete(url, headers=clinic.headers["doc"]).status_code == 422
    provenance = {"resourceType": "Provenance", "recorded": "2026-01-01T00:00:00Z",
                  "target": [{"reference": f"Observation/{decision['id']}/_history/1"}],
                  "agent": [{"who": {"reference": "Practitioner/doc"}}]}
    assert clinic.client.post("/fhir/Provenance", json=provenance,
                              headers=clinic.headers["doc"]).status_code == 422
    assert clinic.status()["status"] == "not-eligible"
    # An unrelated Observation and its Provenance are untouched by these rules.
    pulse = clinic.client.post("/fhir/Observation", headers=clinic.headers["nina"], json={
        "resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
        "subject": {"reference": f"Patient/{clinic.patient}"}})
    assert pulse.status_code == 201


def test_an_expired_decision_reads_as_expired(clinic: Clinic) -> None:
    pipeline = clinic.app.state.pipeline
    pipeline.clock = lambda: T0
    clinic.screen()
    assert clinic.decide("eligible").status_code == 201
    pipeline.clock = lambda: T0 + 90 * DAY_US - 1
    assert clinic.status()["status"] == "eligible"
    pipeline.clock = lambda: T0 + 90 * DAY_US
    result = clinic.status()
    assert result["status"] == "expired"
    assert result["expires"] == instants.instant(T0 + 90 * DAY_US)
    assert "expired" in result["reason"][0]
    # A new decision makes the patient current again.
    assert clinic.decide("eligible").status_code == 201
    assert clinic.status()["status"] == "eligible"


def test_findings_after_an_eligible_decision_downgrade_it(clinic: Clinic) -> None:
    clinic.screen()
    assert clinic.decide("eligible").status_code == 201
    flag = build_flag(clinic.patient, "cssrs-high-risk", "C-SSRS high risk", blocks_dosing=True)
    created = clinic.client.post("/fhir/Flag", json=flag, headers=clinic.headers["tara"])
    assert created.status_code == 201, created.text
    result = clinic.status()
    assert result["status"] == "needs-review"
    assert result["reason"] == ["Found since the decision (needs-review): High suicide risk"]
    clinic.screen(breastfeeding=True)
    assert clinic.status()["status"] == "not-eligible"
    # The physician reviews: the flag's rule fired, so the decision says which flag.
    decided = clinic.decide("not-eligible")
    decision = parameters(decided.json())["observation"]
    assert {"reference": f"Flag/{created.json()['id']}/_history/1"} in decision["derivedFrom"]


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
