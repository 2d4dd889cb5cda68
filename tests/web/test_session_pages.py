"""The session page (issue 8 item 2): checklist, dose charting, vitals, alerts, discharge.

The clinic is the dosing tests' own (``tests/clinical/dosing/world.py``): an eligible patient on
a care team, a registered location with a ketamine lot, an IM order. Everything on the page is
done as a signed-in user through the forms, as at the chair.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from clinical.dosing.world import HOUR, MINUTE, PASSWORD, Clinic
from fastapi.testclient import TestClient
from session_clinic import NORMAL

from ehr.clinical.sessions.protocol import default_protocol
from ehr.instants import now_us
from web.signing_in import csrf_of, sign_in
from web.test_pages import ui_events

PER_KG = "0.5"


@dataclass
class Desk:
    """The clinic, a signed-in browser, and the clinical clock at ``now``."""

    clinic: Clinic
    browser: TestClient
    now: int

    def at(self, minutes: float) -> None:
        value = self.now + int(minutes * MINUTE)
        self.clinic.app.state.pipeline.clock = lambda: value

    def sign_in(self, role: str) -> None:
        self.browser.cookies.clear()
        assert sign_in(self.browser, f"{role}-user", PASSWORD).status_code == 303

    def csrf(self, path: str) -> str:
        return csrf_of(self.browser.get(path).text)

    def start_session(self, patient: str | None = None) -> str:
        pid = patient or self.clinic.patient
        episode = self.clinic.create({"resourceType": "EpisodeOfCare", "status": "active",
                                      "patient": {"reference": f"Patient/{pid}"}})
        token = self.csrf(f"/patients/{pid}/sessions")
        started = self.browser.post(f"/patients/{pid}/sessions", data={
            "csrf": token, "course": episode, "check_in": "1"})
        assert started.status_code == 303, started.text
        return str(started.headers["location"]).rsplit("/", 1)[-1]

    def post(self, eid: str, path: str, **data: str) -> Any:
        return self.browser.post(f"/sessions/{eid}/{path}",
                                 data={"csrf": self.csrf(f"/sessions/{eid}"), **data})

    def vitals(self, eid: str, **values: Any) -> Any:
        fields = {k.replace("_", "-"): str(v) for k, v in {**NORMAL, **values}.items()}
        return self.post(eid, "vitals", **fields)

    def chart(self, eid: str, per_kg: str = PER_KG, **extra: str) -> Any:
        return self.post(eid, "dose", action="chart", order=self.clinic.order("im"),
                         lot="KET-2026-01", per_kg=per_kg, **extra)

    def doses(self, patient: str | None = None) -> list[dict[str, Any]]:
        found = self.clinic.http.get("/fhir/MedicationAdministration", params={
            "patient": patient or self.clinic.patient})
        return [e["resource"] for e in found.json().get("entry") or []]


def open_clinic(web_app: Any) -> tuple[Clinic, int]:
    """The dosing tests' clinic on ``web_app``, with an IM order and a 70 kg weight 2 days old;
    also returns "now" (on a whole minute) for the clinical clock."""
    from ehr_testing import bearer

    http = TestClient(web_app, base_url="http://testserver")
    http.headers.update(bearer(web_app, subject="test-suite", kind="client",
                               scopes="system/*.cruds"))
    clinic = Clinic(web_app, http, web_app.state.engine)
    for role in ("physician", "nurse", "therapist"):
        clinic.user(role)
    clinic.patient = clinic.make_patient()
    clinic.make_eligible(clinic.patient)
    clinic.make_location_and_lot()
    clinic.order("im")
    now = now_us() // MINUTE * MINUTE
    # Two days old: a usable weight that still earns a warning on success.
    clinic.weight(70, now - 48 * HOUR)
    return clinic, now


@pytest.fixture
def desk(web_app: Any, browser: TestClient) -> Iterator[Desk]:
    clinic, now = open_clinic(web_app)
    desk = Desk(clinic, browser, now)
    desk.at(0)
    desk.sign_in("physician")
    yield desk


def gate_state(html: str, key: str) -> str:
    found = re.search(rf'id="gate-{key}" data-state="(\w+)"', html)
    assert found, f"no gate {key}"
    return found.group(1)


def test_checklist_shows_each_gate_pass_and_fail(desk: Desk) -> None:
    eid = desk.start_session()
    page = desk.browser.get(f"/sessions/{eid}")
    assert page.status_code == 200
    assert 'id="session-phase">Arrived' in page.text
    assert gate_state(page.text, "vitals") == "fail"
    assert "no systolic blood pressure" in page.text
    for passing in ("eligibility", "flags", "interval", "lot", "order"):
        assert gate_state(page.text, passing) == "pass", passing
    assert gate_state(page.text, "weight") == "warn"  # two days old: usable, not from today
    assert desk.vitals(eid, moaas="", cadss="").status_code == 303
    page = desk.browser.get(f"/sessions/{eid}")
    assert gate_state(page.text, "vitals") in ("pass", "warn")
    assert "no systolic blood pressure" not in page.text
    desk.clinic.blocking_flag()
    page = desk.browser.get(f"/sessions/{eid}")
    assert gate_state(page.text, "flags") == "fail"
    assert "blocks dosing until a physician reviews it" in page.text


def test_calculator_shows_mg_ml_and_the_protocol_maximum(desk: Desk) -> None:
    eid = desk.start_session()
    page = desk.post(eid, "dose", action="calculate", order=desk.clinic.order("im"),
                     lot="KET-2026-01", per_kg="0.5")
    assert page.status_code == 200
    # 0.5 mg/kg x 70 kg = 35 mg; 35 mg at 50 mg/mL = 0.7 mL; IM maximum min(1 mg/kg, 100 mg).
    assert '<output id="calc-mg" for="per_kg mg lot">35</output>' in page.text
    assert '<output id="calc-ml" for="per_kg mg lot">0.7</output>' in page.text
    assert 'id="max-mg">maximum 70 mg' in page.text
    over = desk.post(eid, "dose", action="calculate", order=desk.clinic.order("im"),
                     lot="KET-2026-01", per_kg="1.2")
    assert gate_state(over.text, "dose") == "fail"
    assert "above the protocol maximum" in over.text


def test_dose_charted_for_an_eligible_patient(desk: Desk) -> None:
    eid = desk.start_session()
    desk.at(-10)
    assert desk.vitals(eid, moaas="", cadss="").status_code == 303
    desk.at(0)
    before = desk.clinic.balance()
    charted = desk.chart(eid)
    assert charted.status_code == 200, charted.text
    assert "Dose charted: 35.0 mg" in charted.text
    assert "not recorded on the day of the dose" in charted.text  # the warning on success
    [dose] = desk.doses()
    assert dose["dosage"]["dose"]["value"] == 35.0
    assert dose["contained"][0]["batch"]["lotNumber"] == "KET-2026-01"
    assert dose["context"]["reference"] == f"Encounter/{eid}"
    assert before - desk.clinic.balance() == 35
    assert 'id="session-phase">Post-dose monitoring' in charted.text


def test_gate_failures_of_an_ineligible_patient_are_all_shown(desk: Desk) -> None:
    other = desk.clinic.make_patient()
    desk.clinic.blocking_flag(other)
    desk.clinic.weight(70, desk.now - HOUR, patient=other)
    desk.clinic.order("im", patient=other)
    eid = desk.start_session(other)
    refused = desk.post(eid, "dose", action="chart",
                        order=desk.clinic.order("im", patient=other), lot="KET-2026-01",
                        per_kg="1.5")
    assert refused.status_code == 422
    box = refused.text.split('id="dose-refused"', 1)[1].split("</div>", 1)[0]
    assert "Eligibility: the patient&#39;s eligibility is &#39;none&#39;" in box
    assert "Safety flags: Flag/" in box
    assert "Pre-dose vital signs: no systolic blood pressure" in box
    assert "Dose and protocol maximum:" in box and "above the protocol maximum" in box
    assert desk.doses(other) == []


def test_therapist_gets_no_dose_form_and_a_forged_post_is_refused(desk: Desk) -> None:
    eid = desk.start_session()
    desk.sign_in("therapist")
    page = desk.browser.get(f"/sessions/{eid}")
    assert page.status_code == 200
    assert 'id="no-dose-form"' in page.text
    assert f'action="/sessions/{eid}/dose"' not in page.text
    forged = desk.chart(eid)
    assert forged.status_code == 403
    assert "Your role may not chart doses" in forged.text
    assert desk.doses() == []


def test_vitals_show_in_chart_and_table_and_a_breach_raises_an_alert(desk: Desk) -> None:
    eid = desk.start_session()
    assert desk.vitals(eid).status_code == 303
    desk.at(5)
    breach = desk.vitals(eid, systolic=190)
    assert breach.status_code == 303 and "alerts=1" in breach.headers["location"]
    page = desk.browser.get(breach.headers["location"])
    assert "1 alert(s) raised" in page.text
    alerts = page.text.split('id="alerts"', 1)[1].split("</section>", 1)[0]
    assert "Systolic BP 190" in alerts and "active" in alerts
    table = page.text.split('id="vitals-table"', 1)[1].split("</table>", 1)[0]
    assert 'class="breach">190' in table and ">120<" in table
    limit = default_protocol().threshold("systolic")
    assert limit is not None and limit.above is not None
    assert f"SBP alert &gt; {limit.above:g}" in page.text  # threshold line from the protocol
    assert page.text.count('<svg class="chart vitals"') == 2
    assert page.text.count('class="point breach s-systolic"') == 1
    wrong = desk.vitals(eid, heart_rate="fast", spo2=20)
    assert wrong.status_code == 422
    assert 'id="v-heart-rate-error">Heart rate: enter a number.' in wrong.text


def test_discharge_refused_with_every_reason_then_signed(desk: Desk) -> None:
    eid = desk.start_session()
    desk.at(-10)
    desk.vitals(eid)
    desk.at(0)
    assert desk.chart(eid).status_code == 200
    refused = desk.post(eid, "discharge")
    assert refused.status_code == 422
    box = refused.text.split('id="discharge-refused"', 1)[1].split("</div>", 1)[0]
    for reason in ("minimum observation time not reached", "no post-dose MOAA/S recorded",
                   "no post-dose Systolic BP recorded", "the discharge is not signed"):
        assert reason in box, reason
    assert box.count("<li>") >= 6
    desk.at(65)
    desk.vitals(eid)
    wrong = desk.post(eid, "discharge", **{"alert-oriented": "1", "escort-confirmed": "1",
                                          "no-driving": "1", "password": "not it"})
    assert wrong.status_code == 422 and "The password is not correct" in wrong.text
    signed = desk.post(eid, "discharge", **{"alert-oriented": "1", "escort-confirmed": "1",
                                           "no-driving": "1", "escort-name": "Pat Doe",
                                           "password": PASSWORD})
    assert signed.status_code == 303, signed.text
    page = desk.browser.get(signed.headers["location"])
    assert 'id="session-phase">Discharged' in page.text and "Discharge signed" in page.text


def test_session_pages_are_audited(desk: Desk) -> None:
    eid = desk.start_session()
    desk.browser.get(f"/sessions/{eid}")
    views = [r for r in ui_events(desk.clinic.app) if r.actor_id == "physician-user"]
    session_views = [r for r in views if (r.rtype, r.rid) == ("Encounter", eid)]
    assert session_views and desk.clinic.patient in session_views[-1].body
    assert '"session"' in session_views[-1].body
    assert any((r.rtype, r.rid) == ("Patient", desk.clinic.patient)
               and "session-list" in r.body for r in views)
