"""Over HTTP: ``$monitoring-schedule``, the ``$discharge`` gate (422 with every reason, then
signed success), the REMS form and its overdue listing, and adverse-event links."""

from __future__ import annotations

from typing import Any

from session_clinic import NORMAL, Clinic, audited

from ehr.clinical.sessions.phases import phase_of
from ehr.clinical.sessions.rems import REMS_QUESTIONNAIRE

CHECKLIST = [{"name": "alert-oriented", "valueBoolean": True},
             {"name": "escort-confirmed", "valueBoolean": True},
             {"name": "escort-name", "valueString": "Alex <Friend>"},
             {"name": "no-driving", "valueBoolean": True}]


def monitored(clinic: Clinic, *, mg: float = 56, lot: str = "LOT-A1") -> dict[str, Any]:
    """An esketamine session: baseline at -10, dose at 0, BP at 40, vitals at 110."""
    enc = clinic.session()
    clinic.recorded(enc, -10, **NORMAL)
    clinic.move(enc, "dosing")
    clinic.dose(enc, "esketamine", start=0, mg=mg, lot=lot)
    clinic.move(enc, "monitoring")
    clinic.recorded(enc, 40, systolic=150, diastolic=95, moaas=3, cadss=12)
    clinic.recorded(enc, 110, **NORMAL)
    return enc


def _params(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in body["parameter"] if p["name"] == name]


def test_schedule_operation(clinic: Clinic) -> None:
    enc = monitored(clinic)
    clinic.now(60)
    body = clinic.read(f"Encounter/{enc['id']}/$monitoring-schedule")
    assert _params(body, "route")[0]["valueCode"] == "esketamine-nasal"
    items = [{p["name"]: next(v for k, v in p.items() if k.startswith("value"))
              for p in item["part"]} for item in _params(body, "item")]
    assert [(i["label"], i["status"]) for i in items] == [
        ("pre-dose", "done"), ("post-dose", "done"), ("before-discharge", "due")]
    assert _params(body, "overdue")[0]["valueInteger"] == 0
    # A session without the 40-minute reading: overdue once its window passed.
    other = clinic.session()
    clinic.move(other, "dosing")
    clinic.dose(other, "esketamine", start=0)
    clinic.now(46)
    body = clinic.read(f"Encounter/{other['id']}/$monitoring-schedule")
    assert _params(body, "overdue")[0]["valueInteger"] == 2  # pre-dose and 40 minutes


def test_discharge_refused_with_every_reason(clinic: Clinic) -> None:
    enc = monitored(clinic)
    clinic.now(100)  # too early, and the last vitals (110) are in the future of this clock
    response = clinic.operation(enc["id"], "discharge", [
        {"name": "alert-oriented", "valueBoolean": True},
        {"name": "escort-confirmed", "valueBoolean": False},
        {"name": "no-driving", "valueBoolean": True}])
    assert response.status_code == 422, response.text
    reasons = [i["diagnostics"] for i in response.json()["issue"]]
    assert any("minimum observation time" in r for r in reasons)
    assert "no escort is confirmed" in reasons
    assert any("not signed" in r for r in reasons)
    assert phase_of(clinic.read(f"Encounter/{enc['id']}")) == "monitoring"


def test_discharge_signature_checked(clinic: Clinic) -> None:
    enc = monitored(clinic)
    clinic.now(125)
    forged = clinic.operation(enc["id"], "discharge",
                              [*CHECKLIST, {"name": "signature", "valueString": "x.y.z"}])
    assert forged.status_code == 422 and "signature refused" in forged.text
    # Another user's assertion is refused too.
    theirs = clinic.assertion("doc")
    response = clinic.operation(enc["id"], "discharge",
                                [*CHECKLIST, {"name": "signature", "valueString": theirs}])
    assert response.status_code == 422 and "another user" in response.text
    therapist = clinic.operation(enc["id"], "discharge", CHECKLIST, who="tara")
    assert therapist.status_code == 403


def test_discharge_success_signed(clinic: Clinic) -> None:
    enc = monitored(clinic)
    clinic.now(125)
    assertion = clinic.assertion("nina")
    response = clinic.operation(enc["id"], "discharge",
                                [*CHECKLIST, {"name": "signature", "valueString": assertion}])
    assert response.status_code == 200, response.text
    body = response.json()
    encounter = _params(body, "encounter")[0]["resource"]
    assert encounter["status"] == "finished" and phase_of(encounter) == "discharged"
    provenance = _params(body, "provenance")[0]["resource"]
    checklist = _params(body, "questionnaireResponse")[0]["resource"]
    assert provenance["target"][0]["reference"] == \
        f"Encounter/{enc['id']}/_history/{encounter['meta']['versionId']}"
    signature = provenance["signature"][0]
    assert signature["who"] == {"reference": "Practitioner/nina", "display": "Nina Ortiz, RN"}
    assert signature["when"] and signature["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    answers = {i["linkId"]: i["answer"][0] for i in checklist["item"]}
    assert answers["escort-confirmed"] == {"valueBoolean": True}
    # The assertion is single-use, and a discharged session stays discharged.
    again = clinic.operation(enc["id"], "discharge",
                             [*CHECKLIST, {"name": "signature", "valueString": assertion}])
    assert again.status_code == 409
    assert ("nina", "Encounter", enc["id"]) in audited(clinic.engine, "operation:discharge")
    assert any(r[1] == "Provenance" for r in audited(clinic.engine, "create"))


def test_rems_form_matches_session(clinic: Clinic) -> None:
    enc = monitored(clinic, mg=84, lot="LOT-Z9")
    clinic.now(125)
    assertion = clinic.assertion("nina")
    assert clinic.operation(enc["id"], "discharge", [
        *CHECKLIST, {"name": "signature", "valueString": assertion}]).status_code == 200
    form = clinic.read(f"Encounter/{enc['id']}/$rems-form")
    assert form["questionnaire"] == REMS_QUESTIONNAIRE
    flat: dict[str, Any] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "answer" in item:
                flat[item["linkId"]] = [next(iter(a.values())) for a in item["answer"]]
            walk(item.get("item", []))

    walk(form["item"])
    assert flat["dose-mg"] == [84]
    assert flat["lot-number"] == ["LOT-Z9"]
    assert flat["duration-minutes"] == [125]
    assert (flat["bp-pre-dose-systolic"], flat["bp-pre-dose-diastolic"]) == ([120], [80])
    assert (flat["bp-post-dose-systolic"], flat["bp-post-dose-diastolic"]) == ([150], [95])
    assert (flat["bp-discharge-systolic"], flat["bp-discharge-diastolic"]) == ([120], [80])
    assert flat["sedation-observed"] == [True] and flat["sedation-resolved"] == [True]
    assert flat["dissociation-observed"] == [True] and flat["dissociation-resolved"] == [True]
    page = clinic.get(f"Encounter/{enc['id']}/$rems-form?_format=html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "LOT-Z9" in page.text and "Sam Session" in page.text
    html = clinic.get(f"Encounter/{enc['id']}/$rems-form", Accept="text/html")
    assert html.status_code == 200 and "<table>" in html.text


def test_rems_page_escapes(clinic: Clinic) -> None:
    enc = monitored(clinic, lot="<script>alert(1)</script>")
    page = clinic.get(f"Encounter/{enc['id']}/$rems-form?_format=html")
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_rems_overdue(clinic: Clinic) -> None:
    enc = monitored(clinic)
    iv = clinic.session()
    clinic.move(iv, "dosing")
    clinic.dose(iv, "iv", start=0, end=40)
    clinic.now(7 * 24 * 60 - 1)
    assert _params(clinic.read("$rems-overdue"), "session") == []
    due = _params(clinic.read("$rems-overdue?status=all"), "session")
    assert [p["part"][0]["valueReference"]["reference"] for p in due] == [f"Encounter/{enc['id']}"]
    clinic.now(7 * 24 * 60 + 1)
    overdue = _params(clinic.read("$rems-overdue"), "session")
    assert len(overdue) == 1 and overdue[0]["part"][-1]["valueCode"] == "overdue"
    assert clinic.get("$rems-overdue", who="cora").status_code == 403
    stored = clinic.client.post(f"/fhir/Encounter/{enc['id']}/$rems-form",
                                headers=clinic.headers["doc"])
    assert stored.status_code == 201, stored.text
    assert stored.json()["status"] == "completed"
    assert _params(clinic.read("$rems-overdue"), "session") == []
    assert clinic.get(f"Encounter/{iv['id']}/$rems-form").status_code == 422


def test_adverse_event_links(clinic: Clinic) -> None:
    enc = clinic.session()
    clinic.move(enc, "dosing")
    dose = clinic.dose(enc, "esketamine", start=0)
    event = {"resourceType": "AdverseEvent", "actuality": "actual",
             "subject": {"reference": f"Patient/{clinic.patient}"},
             "encounter": {"reference": f"Encounter/{enc['id']}"},
             "event": {"text": "Nausea"},
             "suspectEntity": [{"instance": {"reference":
                                             f"MedicationAdministration/{dose['id']}"}}]}
    assert clinic.post(event, "nina").status_code == 201
    other = clinic.session()
    wrong = dict(event, encounter={"reference": f"Encounter/{other['id']}"})
    response = clinic.post(wrong, "nina")
    assert response.status_code == 422 and "was given in" in response.text
    stranger = clinic.client.post("/fhir/Patient", json={"resourceType": "Patient"},
                                  headers=clinic.headers["system"]).json()["id"]
    foreign = dict(event, subject={"reference": f"Patient/{stranger}"})
    response = clinic.client.post("/fhir/AdverseEvent", json=foreign,
                                  headers=clinic.headers["system"])
    assert response.status_code == 422, response.text
    issues = [i["diagnostics"] for i in response.json()["issue"]]
    assert any("another patient's session" in i for i in issues)
    assert any("given to another patient" in i for i in issues)
    missing = dict(event, suspectEntity=[{"instance": {
        "reference": "MedicationAdministration/00000000-0000-4000-8000-000000000000"}}])
    assert clinic.post(missing, "nina").status_code == 422
