"""A whole session at the chair in Chromium, and a therapist refused dose charting."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from clinical.dosing.world import MINUTE, PASSWORD, Clinic

from web.browser.conftest import screenshot
from web.signing_in import PASSWORD as WEB_PASSWORD
from web.signing_in import make_user
from web.test_session_pages import open_clinic

FLOW = "session"


def sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/patients")


def clock(clinic: Clinic, value: int) -> None:
    clinic.app.state.pipeline.clock = lambda: value


def record_vitals(page: Any, moaas: str | None = None, systolic: str = "122") -> None:
    form = page.locator("#vitals-form")
    for label, value in (("Systolic BP", systolic), ("Diastolic BP", "78"),
                         ("Heart rate", "72"), ("Respiratory rate", "14"),
                         ("Oxygen saturation (SpO2)", "98"), ("Body temperature", "36.8")):
        form.get_by_label(label).fill(value)
    if moaas is not None:
        form.get_by_label("MOAA/S").select_option(moaas)
        form.get_by_label("CADSS total").fill("0")
    form.get_by_role("button", name="Record vital signs").click()
    page.wait_for_url("**done=vitals**")


def start_session(page: Any, clinic: Clinic) -> str:
    clinic.create({"resourceType": "EpisodeOfCare", "status": "active",
                   "patient": {"reference": f"Patient/{clinic.patient}"}})
    page.goto(f"/patients/{clinic.patient}")
    page.get_by_role("link", name="Sessions", exact=True).click()
    page.get_by_role("button", name="Start session").click()
    page.wait_for_url("**/sessions/*")
    return str(page.url).rsplit("/", 1)[-1]


def test_physician_runs_a_session_from_check_in_to_discharge(web_app: Any,
                                                              tablet: Any) -> None:
    clinic, now = open_clinic(web_app)
    clock(clinic, now - 10 * MINUTE)
    sign_in(tablet, "physician-user")
    start_session(tablet, clinic)
    assert tablet.locator("#session-phase").inner_text() == "Arrived"
    assert tablet.locator("#gate-vitals").get_attribute("data-state") == "fail"
    screenshot(tablet, FLOW, "1-checked-in")

    record_vitals(tablet)
    tablet.get_by_label("Record today's weight (kg)").fill("70")
    tablet.get_by_role("button", name="Record weight").click()
    tablet.wait_for_url("**done=weight")
    assert tablet.locator("#vitals-table tbody tr").count() == 1
    screenshot(tablet, FLOW, "2-pre-dose-vitals")

    clock(clinic, now)
    tablet.reload()
    states = tablet.locator("li.gate").evaluate_all(
        "items => items.map(i => i.getAttribute('data-state'))")
    assert states and set(states) == {"pass"}, states
    tablet.locator("#checklist").scroll_into_view_if_needed()
    screenshot(tablet, FLOW, "3-gates-green")

    tablet.get_by_label("Dose (mg/kg)").fill("0.5")
    assert tablet.locator("#calc-mg").inner_text() == "35"
    assert tablet.locator("#calc-ml").inner_text() == "0.7"
    assert "maximum 70 mg" in tablet.locator("#max-mg").inner_text()
    screenshot(tablet, FLOW, "4-calculator")
    tablet.get_by_role("button", name="Chart the dose").click()
    tablet.wait_for_load_state()
    assert "Dose charted: 35.0 mg" in tablet.content()
    assert tablet.locator("#session-phase").inner_text() == "Post-dose monitoring"
    screenshot(tablet, FLOW, "5-dose-charted")

    clock(clinic, now + 15 * MINUTE)
    record_vitals(tablet, moaas="4", systolic="134")
    clock(clinic, now + 65 * MINUTE)
    record_vitals(tablet, moaas="5")
    assert tablet.locator("svg.vitals").count() == 2
    assert tablet.locator("#vitals-table tbody tr").count() == 3
    screenshot(tablet, FLOW, "6-monitoring")

    tablet.get_by_label("Alert and oriented").check()
    tablet.get_by_label("Escort confirmed").check()
    tablet.get_by_label("No driving today acknowledged").check()
    tablet.get_by_label("Escort's name").fill("Pat Doe")
    tablet.get_by_label("Your password (signs the discharge)").fill(PASSWORD)
    tablet.get_by_role("button", name="Sign the discharge").click()
    tablet.wait_for_url("**done=discharged")
    assert tablet.locator("#session-phase").inner_text() == "Discharged"
    screenshot(tablet, FLOW, "7-discharged")
    compliance_finds_the_session(web_app, tablet, clinic)


def compliance_finds_the_session(web_app: Any, tablet: Any, clinic: Clinic) -> None:
    """The compliance officer finds that session in the audit log and exports it."""
    make_user(web_app, "officer-flow", "compliance")
    tablet.get_by_role("button", name="Sign out").click()
    tablet.wait_for_url("**/login")
    tablet.get_by_label("User name").fill("officer-flow")
    tablet.get_by_label("Password").fill(WEB_PASSWORD)
    tablet.get_by_role("button", name="Sign in").click()
    tablet.wait_for_url("**/compliance/audit")
    tablet.get_by_label("Patient id").fill(clinic.patient)
    tablet.get_by_label("User", exact=True).fill("physician-user")
    tablet.get_by_role("button", name="Search").click()
    table = tablet.locator("tbody").inner_text()
    assert "MedicationAdministration/" in table and "Encounter/" in table
    screenshot(tablet, "compliance", "2-session-in-audit-log")
    with tablet.expect_download() as download_info:
        tablet.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(
        Path(download_info.value.path()).read_text(encoding="utf-8"))))
    assert rows and all(clinic.patient in row["patients"] for row in rows)
    assert {"MedicationAdministration", "Encounter"} <= {row["resource_type"] for row in rows}
    assert {row["actor"] for row in rows} == {"physician-user"}


def test_therapist_is_refused_dose_charting(web_app: Any, tablet: Any) -> None:
    clinic, now = open_clinic(web_app)
    clock(clinic, now)
    sign_in(tablet, "physician-user")
    eid = start_session(tablet, clinic)
    tablet.get_by_role("button", name="Sign out").click()
    tablet.wait_for_url("**/login")
    sign_in(tablet, "therapist-user")
    tablet.goto(f"/sessions/{eid}")
    assert tablet.locator("#no-dose-form").is_visible()
    assert tablet.locator("#dose-form").count() == 0
    screenshot(tablet, "session-therapist", "1-no-dose-form")
    # A forged charting form, posted with the page's own CSRF token: the FHIR layer refuses.
    with tablet.expect_navigation():
        tablet.evaluate("""eid => {
            const form = document.createElement('form');
            form.method = 'post'; form.action = '/sessions/' + eid + '/dose';
            for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value],
                                  ['action', 'chart'], ['per_kg', '0.5']]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = k; input.value = v;
                form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();
        }""", eid)
    assert tablet.get_by_role("heading", name="Dose not charted").is_visible()
    assert "Your role may not chart doses" in tablet.content()
    screenshot(tablet, "session-therapist", "2-forged-post-refused")
