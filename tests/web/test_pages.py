"""Clinician, compliance and admin pages: same permissions and audit as the API (issue 8)."""

from __future__ import annotations

import csv
import io
from typing import Any

from ehr_testing import sealed
from fastapi.testclient import TestClient

from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.writer import Writer
from web.signing_in import csrf_of, make_user, sign_in


def create(app: Any, resource: dict[str, Any]) -> str:
    with unit_of_work(app.state.engine, write=True) as session:
        stored = Writer(app.state.pipeline, session, RequestContext(actor=SYSTEM)).create(
            resource["resourceType"], resource).stored
    assert stored is not None
    return stored.rid


def patient(app: Any, family: str, mrn: str) -> str:
    return create(app, {"resourceType": "Patient", "name": [{"family": family,
                                                            "given": ["Ann"]}],
                        "identifier": [{"system": "urn:mrn", "value": mrn}]})


def on_team(app: Any, pid: str, practitioner: str) -> None:
    create(app, {"resourceType": "CareTeam", "status": "active",
                 "subject": {"reference": f"Patient/{pid}"},
                 "participant": [{"member": {"reference": practitioner}}]})


def ui_events(app: Any) -> list[Any]:
    with unit_of_work(sealed(app.state.engine, app)) as session:
        return [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                if r.category == "ui"]


def test_patient_list_shows_the_care_team_only(web_app: Any, browser: TestClient) -> None:
    mine, theirs = patient(web_app, "Mine", "MRN-1"), patient(web_app, "Theirs", "MRN-2")
    on_team(web_app, mine, "Practitioner/drteam")
    make_user(web_app, "drteam", "physician", practitioner="Practitioner/drteam")
    sign_in(browser, "drteam")
    page = browser.get("/patients")
    assert page.status_code == 200
    assert f"/patients/{mine}" in page.text and "Mine" in page.text
    assert theirs not in page.text and "Theirs" not in page.text
    assert page.headers["cache-control"] == "no-store"
    outside = browser.get(f"/patients/{theirs}")
    assert outside.status_code == 404
    assert "break-the-glass" in outside.text
    chart = browser.get(f"/patients/{mine}")
    assert chart.status_code == 200 and "MRN-1" in chart.text
    viewed = [r for r in ui_events(web_app) if r.rid == mine]
    assert viewed and viewed[-1].actor_id == "drteam"


def test_break_the_glass_opens_the_chart(web_app: Any, browser: TestClient) -> None:
    pid = patient(web_app, "Outside", "MRN-77")
    make_user(web_app, "drbtg", "physician", practitioner="Practitioner/drbtg")
    sign_in(browser, "drbtg")
    token = csrf_of(browser.get("/patients").text)
    short = browser.post("/patients/break-glass",
                         data={"csrf": token, "identifier": "MRN-77", "reason": "urgent"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    unknown = browser.post("/patients/break-glass", data={
        "csrf": token, "identifier": "MRN-00", "reason": "patient unconscious in clinic"})
    assert unknown.status_code == 422 and "No single patient" in unknown.text
    granted = browser.post("/patients/break-glass", data={
        "csrf": token, "identifier": "MRN-77", "reason": "patient unconscious in clinic"})
    assert granted.status_code == 303
    assert granted.headers["location"] == f"/patients/{pid}"
    assert browser.get(f"/patients/{pid}").status_code == 200
    with unit_of_work(sealed(web_app.state.engine, web_app)) as session:
        purposes = [r.purpose for r in repository.stream(
            session, AuditFilter(), [SortKey("seq", False)]) if r.rid == pid]
    assert "ETREAT" in purposes


def test_compliance_searches_and_exports_the_trail(web_app: Any, browser: TestClient) -> None:
    pid = patient(web_app, "Audited", "MRN-5")
    on_team(web_app, pid, "Practitioner/draud")
    make_user(web_app, "draud", "physician", practitioner="Practitioner/draud")
    make_user(web_app, "officer", "compliance")
    sign_in(browser, "draud")
    browser.get(f"/patients/{pid}")
    browser.cookies.clear()
    sign_in(browser, "officer")
    page = browser.get("/compliance/audit", params={"patient": pid, "user": "draud"})
    assert page.status_code == 200
    assert "draud" in page.text and pid in page.text
    bad = browser.get("/compliance/audit", params={"from": "yesterday"})
    assert bad.status_code == 400
    export = browser.get("/compliance/audit.csv", params={"patient": pid})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows and all(pid in row["patients"] for row in rows)
    assert {"read", "ui-view"} <= {row["interaction"] for row in rows}
    with unit_of_work(sealed(web_app.state.engine, web_app)) as session:
        kinds = [r.interaction for r in repository.stream(session, AuditFilter(),
                                                          [SortKey("seq", False)])]
    assert "audit-export" in kinds


def test_chain_status_and_verification(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "officer2", "compliance")
    sign_in(browser, "officer2")
    page = browser.get("/compliance/chain")
    assert page.status_code == 200
    token = csrf_of(page.text)
    verified = browser.post("/compliance/chain/verify", data={"csrf": token})
    assert verified.status_code == 200
    assert "intact" in verified.text


def test_admin_creates_users_with_errors_next_to_fields(web_app: Any,
                                                         browser: TestClient) -> None:
    make_user(web_app, "admin2", "admin")
    sign_in(browser, "admin2")
    token = csrf_of(browser.get("/admin/users").text)
    missing = browser.post("/admin/users", data={"csrf": token, "username": ""})
    assert missing.status_code == 422
    assert 'id="username-error"' in missing.text and "Choose at least one role" in missing.text
    weak = browser.post("/admin/users", data={"csrf": token, "username": "newnurse",
                                              "role": "nurse", "password": "short"})
    assert weak.status_code == 400 and "12" in weak.text
    made = browser.post("/admin/users", data={"csrf": token, "username": "newnurse",
                                              "role": "nurse",
                                              "password": "a long enough password"})
    assert made.status_code == 200 and "Created user newnurse" in made.text
    browser.cookies.clear()
    assert sign_in(browser, "newnurse", "a long enough password").status_code == 303


def test_admin_adds_a_clinician_to_a_care_team(web_app: Any, browser: TestClient) -> None:
    pid = patient(web_app, "Teamed", "MRN-9")
    make_user(web_app, "admin3", "admin")
    make_user(web_app, "drnew", "physician")
    sign_in(browser, "admin3")
    token = csrf_of(browser.get("/admin/care-teams").text)
    added = browser.post("/admin/care-teams", data={"csrf": token, "patient": pid,
                                                    "username": "drnew"})
    assert added.status_code == 200, added.text
    assert "is on the care team" in added.text
    browser.cookies.clear()
    sign_in(browser, "drnew")
    assert browser.get(f"/patients/{pid}").status_code == 200
