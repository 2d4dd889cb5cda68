"""Admin pages (issue 8 item 5): a user's roles, Practitioner/NPI/DEA, a temporary password,
and care-team membership per patient; audited, errors next to the field, admins only."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from ehr_testing import sealed
from fastapi.testclient import TestClient

from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.db import unit_of_work
from web.signing_in import PASSWORD, csrf_of, make_user, sign_in
from web.test_pages import create, on_team, patient

NEW_PASSWORD = "a temporary passphrase"


def security_events(app: Any, interaction: str) -> list[dict[str, Any]]:
    with unit_of_work(sealed(app.state.engine, app)) as session:
        rows = [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                if r.interaction == interaction]
        return [{**json.loads(r.body), "actor": r.actor_id, "status": r.status} for r in rows]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(name)}-error"[^>]*>([^<]*)</p>',
                      html)
    assert found, f"no error next to {name}"
    assert f'aria-describedby="{name}-error"' in html or f'{name}-error"' in html
    return found.group(1)


def account(app: Any, username: str) -> Any:
    with unit_of_work(app.state.engine) as session:
        return app.state.auth.users.get(session, username)


@pytest.fixture
def admin(web_app: Any, browser: TestClient) -> TestClient:
    make_user(web_app, "root", "admin")
    assert sign_in(browser, "root").status_code == 303
    return browser


def test_only_administrators_reach_the_account_pages(web_app: Any,
                                                     browser: TestClient) -> None:
    make_user(web_app, "nurse1", "nurse")
    make_user(web_app, "cops", "compliance")
    for name, start in (("nurse1", "/patients"), ("cops", "/compliance/audit")):
        sign_in(browser, name)
        assert browser.get("/admin/users/nurse1").status_code == 403
        assert browser.get("/admin/care-teams?patient=x").status_code == 403
        token = csrf_of(browser.get(start).text)
        for path, data in (("/admin/users/nurse1/roles", {"role": "admin"}),
                           ("/admin/users/nurse1/password", {"password": NEW_PASSWORD,
                                                             "password2": NEW_PASSWORD}),
                           ("/admin/care-teams/remove", {"patient": "x", "member": "y"})):
            assert browser.post(path, data={"csrf": token, **data}).status_code == 403
    assert account(web_app, "nurse1").roles == {"nurse"}


def test_admin_changes_roles_with_at_least_one(web_app: Any, admin: TestClient) -> None:
    make_user(web_app, "nina", "nurse")
    page = admin.get("/admin/users")
    assert 'href="/admin/users/nina"' in page.text
    form = admin.get("/admin/users/nina")
    assert form.status_code == 200
    assert re.search(r'value="nurse" checked', form.text)
    token = csrf_of(form.text)
    none = admin.post("/admin/users/nina/roles", data={"csrf": token})
    assert none.status_code == 422
    assert "at least one role" in field_error(none.text, "role")
    unknown = admin.post("/admin/users/nina/roles", data={"csrf": token, "role": "surgeon"})
    assert unknown.status_code == 400 and "Unknown role" in field_error(unknown.text, "role")
    assert account(web_app, "nina").roles == {"nurse"}

    done = admin.post("/admin/users/nina/roles", data={"csrf": token,
                                                       "role": ["nurse", "therapist"]})
    assert done.status_code == 303 and done.headers["location"] == "/admin/users/nina?done=roles"
    assert account(web_app, "nina").roles == {"nurse", "therapist"}
    assert "Roles changed" in admin.get(done.headers["location"]).text
    # Own admin role: refused, so the last administrator cannot lock everyone out.
    mine = admin.post("/admin/users/root/roles", data={"csrf": token, "role": "compliance"})
    assert mine.status_code == 422 and "own admin role" in field_error(mine.text, "role")
    assert account(web_app, "root").roles == {"admin"}
    assert admin.get("/admin/users/ghost").status_code == 404

    events = security_events(web_app, "user-roles-changed")
    assert len(events) == 1
    assert events[0]["actor"] == "root"
    assert events[0]["detail"] == {"username": "nina", "roles": ["nurse", "therapist"],
                                   "previous": ["nurse"]}
    # The change applies to the signed-in user's next page at once.
    browser2 = TestClient(web_app, follow_redirects=False)
    sign_in(browser2, "nina")
    assert "My notes" in browser2.get("/patients").text


def test_admin_sets_and_clears_practitioner_npi_and_dea(web_app: Any,
                                                        admin: TestClient) -> None:
    make_user(web_app, "doc", "physician")
    make_user(web_app, "nina", "nurse")
    token = csrf_of(admin.get("/admin/users/doc").text)
    bad = admin.post("/admin/users/doc/links", data={
        "csrf": token, "practitioner": "Patient/1", "npi": "1234567890", "dea": "AB1234564"})
    assert bad.status_code == 400
    assert "Practitioner/123" in field_error(bad.text, "practitioner")
    assert "check digit" in field_error(bad.text, "npi")
    assert "check digit" in field_error(bad.text, "dea")
    assert 'value="1234567890"' in bad.text  # what was typed stays in the form
    nurse = admin.post("/admin/users/nina/links", data={"csrf": token, "dea": "AB1234563"})
    assert nurse.status_code == 400 and "physicians only" in field_error(nurse.text, "dea")

    done = admin.post("/admin/users/doc/links", data={
        "csrf": token, "practitioner": "Practitioner/doc", "npi": "1234567893",
        "dea": "ab1234563"})
    assert done.status_code == 303
    user = account(web_app, "doc")
    assert (user.practitioner, user.npi, user.dea) == \
        ("Practitioner/doc", "1234567893", "AB1234563")
    # While an NPI is recorded the physician role cannot go.
    demote = admin.post("/admin/users/doc/roles", data={"csrf": token, "role": "nurse"})
    assert demote.status_code == 400 and "physicians only" in field_error(demote.text, "role")
    cleared = admin.post("/admin/users/doc/links", data={"csrf": token, "practitioner": "",
                                                          "npi": "", "dea": ""})
    assert cleared.status_code == 303
    user = account(web_app, "doc")
    assert (user.practitioner, user.npi, user.dea) == (None, None, None)
    events = security_events(web_app, "user-links-changed")
    assert [e["detail"] for e in events] == [
        {"username": "doc", "practitioner": "Practitioner/doc", "npi": "1234567893",
         "dea": "ab1234563"},
        {"username": "doc", "practitioner": None, "npi": None, "dea": None}]


def test_admin_resets_a_password_and_lifts_a_lockout(web_app: Any, admin: TestClient) -> None:
    make_user(web_app, "nina", "nurse")
    other = TestClient(web_app, follow_redirects=False)
    for _ in range(web_app.state.auth.users.auth.auth_lockout_attempts):
        sign_in(other, "nina", "wrong password!!")
    assert sign_in(other, "nina").status_code != 303  # locked
    token = csrf_of(admin.get("/admin/users/nina").text)
    short = admin.post("/admin/users/nina/password", data={"csrf": token, "password": "short",
                                                           "password2": "short"})
    assert short.status_code == 422 and "at least 12" in field_error(short.text, "password")
    differ = admin.post("/admin/users/nina/password", data={
        "csrf": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD + "!"})
    assert differ.status_code == 422 and "differ" in field_error(differ.text, "password2")
    assert NEW_PASSWORD not in differ.text  # never echoed back
    done = admin.post("/admin/users/nina/password", data={
        "csrf": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 303
    assert sign_in(other, "nina", PASSWORD).status_code != 303
    assert sign_in(other, "nina", NEW_PASSWORD).status_code == 303
    events = security_events(web_app, "user-password-reset")
    assert len(events) == 1 and events[0]["detail"] == {"username": "nina"}
    assert NEW_PASSWORD not in json.dumps(events)


def test_admin_sees_and_removes_care_team_members(web_app: Any, admin: TestClient) -> None:
    pid = patient(web_app, "Teamed", "MRN-T1")
    on_team(web_app, pid, "Practitioner/drone")
    create(web_app, {"resourceType": "CareTeam", "status": "active",
                     "subject": {"reference": f"Patient/{pid}"},
                     "participant": [{"member": {"reference": "Practitioner/drone"}},
                                     {"member": {"reference": "Practitioner/drtwo"}}]})
    make_user(web_app, "drone", "physician", practitioner="Practitioner/drone")
    make_user(web_app, "drtwo", "physician", practitioner="Practitioner/drtwo")
    clinician = TestClient(web_app, follow_redirects=False)
    sign_in(clinician, "drone")
    assert clinician.get(f"/patients/{pid}").status_code == 200

    listed = admin.get("/admin/care-teams", params={"patient": pid})
    assert listed.status_code == 200
    assert listed.text.count('name="member" value="Practitioner/drone"') == 2
    assert "Drtwo (drtwo)" in listed.text
    token = csrf_of(listed.text)
    unknown = admin.get("/admin/care-teams", params={"patient": "nobody"})
    assert "not known" in field_error(unknown.text, "patient")
    stranger = admin.post("/admin/care-teams/remove", data={
        "csrf": token, "patient": pid, "member": "Practitioner/stranger"})
    assert stranger.status_code == 404
    assert "not on a care team" in field_error(stranger.text, "member")

    removed = admin.post("/admin/care-teams/remove", data={
        "csrf": token, "patient": pid, "member": "Practitioner/drone"})
    assert removed.status_code == 200, removed.text
    assert "was removed from the care team" in removed.text
    assert 'name="member" value="Practitioner/drone"' not in removed.text
    assert 'name="member" value="Practitioner/drtwo"' in removed.text
    assert clinician.get(f"/patients/{pid}").status_code == 404  # access went with it
    by_name = admin.post("/admin/care-teams/remove", data={
        "csrf": token, "patient": pid, "member": "drtwo"})
    assert by_name.status_code == 200
    assert "Nobody is on a care team of this patient" in by_name.text

    events = security_events(web_app, "care-team-member-removed")
    assert [(e["actor"], e["patients"], e["detail"]["member"]) for e in events] == [
        ("root", [pid], "Practitioner/drone"), ("root", [pid], "drtwo")]
    assert security_events(web_app, "care-team-viewed")[0]["patients"] == [pid]
    # Added back through the same page: the list shows them again.
    added = admin.post("/admin/care-teams", data={"csrf": token, "patient": pid,
                                                  "username": "drone"})
    assert added.status_code == 200 and 'value="Practitioner/drone"' in added.text
    missing = admin.post("/admin/care-teams", data={"csrf": token, "patient": pid,
                                                    "username": "ghost"})
    assert missing.status_code == 404 and "ghost" in field_error(missing.text, "username")


def test_the_registering_clinician_is_listed_and_removable(web_app: Any,
                                                           admin: TestClient) -> None:
    make_user(web_app, "drreg", "physician", practitioner="Practitioner/drreg")
    make_user(web_app, "drnolink", "physician")
    api = TestClient(web_app)
    made = {}
    for username in ("drreg", "drnolink"):
        token = api.post("/auth/token", data={"grant_type": "password", "username": username,
                                              "password": PASSWORD}).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        created = api.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer)
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        assert api.get(f"/fhir/Patient/{pid}", headers=bearer).status_code == 200
        made[username] = (pid, bearer)

    pid, bearer = made["drreg"]
    listed = admin.get("/admin/care-teams", params={"patient": pid})
    assert 'name="member" value="Practitioner/drreg"' in listed.text
    assert "registered the patient" in listed.text
    removed = admin.post("/admin/care-teams/remove", data={
        "csrf": csrf_of(listed.text), "patient": pid, "member": "Practitioner/drreg"})
    assert removed.status_code == 200, removed.text
    assert "registration" in removed.text
    assert "Nobody is on a care team of this patient" in removed.text
    assert api.get(f"/fhir/Patient/{pid}", headers=bearer).status_code == 404

    # A user with no Practitioner is a member under their user name, removable by it.
    pid, bearer = made["drnolink"]
    listed = admin.get("/admin/care-teams", params={"patient": pid})
    assert 'name="member" value="User/drnolink"' in listed.text
    removed = admin.post("/admin/care-teams/remove", data={
        "csrf": csrf_of(listed.text), "patient": pid, "member": "drnolink"})
    assert removed.status_code == 200, removed.text
    assert api.get(f"/fhir/Patient/{pid}", headers=bearer).status_code == 404


def test_care_team_page_shows_participant_periods(web_app: Any, admin: TestClient) -> None:
    pid = patient(web_app, "Periods", "MRN-P1")
    create(web_app, {"resourceType": "CareTeam", "status": "active",
                     "subject": {"reference": f"Patient/{pid}"}, "participant": [
                         {"member": {"reference": "Practitioner/past"},
                          "period": {"start": "2020-01-01", "end": "2021-01-01"}},
                         {"member": {"reference": "Practitioner/later"},
                          "period": {"start": "2999-01-01"}},
                         {"member": {"reference": "Practitioner/now"},
                          "period": {"start": "2020-01-01"}}]})
    listed = admin.get("/admin/care-teams", params={"patient": pid})
    assert listed.status_code == 200
    rows = {m: row for row in listed.text.split("<tr>")
            for m in ("past", "later", "now") if f'value="Practitioner/{m}"' in row}
    assert "2020-01-01 to 2021-01-01" in rows["past"] and ">ended<" in rows["past"]
    assert "2999-01-01 to open" in rows["later"] and ">not started<" in rows["later"]
    assert "2020-01-01 to open" in rows["now"]
    assert ">ended<" not in rows["now"] and ">not started<" not in rows["now"]
