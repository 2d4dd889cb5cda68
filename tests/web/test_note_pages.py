"""Therapist note pages (issue 8 item 3): drafts, signing with the password, addenda,
entered-in-error, psychotherapy notes apart; same rules and audit as the notes API."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.reader import Reader
from web.signing_in import PASSWORD, csrf_of, make_user, sign_in
from web.test_pages import create, ui_events

STAFF = {"tara": "therapist", "theo": "therapist", "doc": "physician"}
NOTE_ID = re.compile(r"/notes/([A-Za-z0-9.-]+)\?done=created")


@pytest.fixture
def clinic(web_app: Any) -> Iterator[dict[str, Any]]:
    pid = create(web_app, {"resourceType": "Patient", "name": [{"family": "Noted",
                                                               "given": ["Nell"]}],
                           "identifier": [{"system": "urn:mrn", "value": "MRN-N1"}]})
    create(web_app, {"resourceType": "CareTeam", "status": "active",
                     "subject": {"reference": f"Patient/{pid}"},
                     "participant": [{"member": {"reference": f"Practitioner/{u}"}}
                                     for u in STAFF]})
    clients: dict[str, TestClient] = {}
    for username, role in STAFF.items():
        make_user(web_app, username, role, practitioner=f"Practitioner/{username}")
    try:
        for username in STAFF:
            client = TestClient(web_app, follow_redirects=False).__enter__()
            clients[username] = client
            assert sign_in(client, username).status_code == 303
        yield {"pid": pid, **clients}
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


def stored(app: Any, rid: str) -> dict[str, Any]:
    with unit_of_work(app.state.engine) as session:
        found = Reader(app.state.pipeline, session, RequestContext(actor=SYSTEM)).read(
            "DocumentReference", rid)
    return json.loads(found.content or "{}")


def text_of(note: dict[str, Any]) -> str:
    return base64.b64decode(note["content"][0]["attachment"]["data"]).decode()


def write(client: TestClient, pid: str, text: str, kind: str = "integration") -> str:
    form = client.get(f"/patients/{pid}/notes/new", params={"kind": kind})
    assert form.status_code == 200, form.text
    made = client.post(f"/patients/{pid}/notes", params={"kind": kind},
                       data={"csrf": csrf_of(form.text), "text": text})
    assert made.status_code == 303, made.text
    found = NOTE_ID.search(made.headers["location"])
    assert found
    return found.group(1)


def version_of(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "no editable draft on the page"
    return found.group(1)


def sign(client: TestClient, rid: str, password: str = PASSWORD) -> Any:
    page = client.get(f"/notes/{rid}")
    stored_text = re.search(r'<textarea id="text" name="text"[^>]*>([^<]*)</textarea>',
                            page.text)
    assert stored_text, "no editor"
    return client.post(f"/notes/{rid}", data={
        "csrf": csrf_of(page.text), "version": version_of(page.text), "action": "sign",
        "text": stored_text.group(1), "password": password})


def test_author_writes_and_edits_a_draft(web_app: Any, clinic: dict[str, Any]) -> None:
    tara, pid = clinic["tara"], clinic["pid"]
    chart = tara.get(f"/patients/{pid}")
    assert "New integration note" in chart.text and "New psychotherapy note" in chart.text
    form = tara.get(f"/patients/{pid}/notes/new", params={"kind": "integration"})
    empty = tara.post(f"/patients/{pid}/notes", params={"kind": "integration"},
                      data={"csrf": csrf_of(form.text), "text": "  "})
    assert empty.status_code == 422 and 'id="text-error"' in empty.text
    rid = write(tara, pid, "First session went well")
    note = stored(web_app, rid)
    assert note["docStatus"] == "preliminary" and note["status"] == "current"
    assert note["subject"] == {"reference": f"Patient/{pid}"}
    assert note["author"][0]["reference"] == "Practitioner/tara"
    assert {c["code"] for c in note["type"]["coding"]} == {"34904-3", "integration"}
    page = tara.get(f"/notes/{rid}")
    assert page.status_code == 200 and "First session went well" in page.text
    saved = tara.post(f"/notes/{rid}", data={
        "csrf": csrf_of(page.text), "version": version_of(page.text), "action": "save",
        "text": "First session went well; plan for the week agreed"})
    assert saved.status_code == 303
    assert text_of(stored(web_app, rid)) == "First session went well; plan for the week agreed"
    mine = tara.get("/notes")
    drafts = mine.text.split('id="drafts-heading"')[1].split('id="signed-heading"')[0]
    assert f"/notes/{rid}" in drafts


def test_other_clinicians_see_a_draft_read_only(web_app: Any,
                                                 clinic: dict[str, Any]) -> None:
    rid = write(clinic["tara"], clinic["pid"], "Draft by Tara")
    for other in ("theo", "doc"):
        client = clinic[other]
        page = client.get(f"/notes/{rid}")
        assert page.status_code == 200 and "Draft by Tara" in page.text
        assert 'id="read-only"' in page.text and 'name="password"' not in page.text
        tried = client.post(f"/notes/{rid}", data={
            "csrf": csrf_of(page.text), "version": "1", "action": "save", "text": "changed"})
        assert tried.status_code == 403
        assert "author" in tried.text
        assert f"/notes/{rid}" not in client.get("/notes").text
    assert text_of(stored(web_app, rid)) == "Draft by Tara"


def test_signing_needs_the_right_password(web_app: Any, clinic: dict[str, Any]) -> None:
    tara = clinic["tara"]
    rid = write(tara, clinic["pid"], "Integration after session two")
    wrong = sign(tara, rid, "not my password")
    assert wrong.status_code == 422
    assert re.search(r'id="password-error">The password is not correct', wrong.text)
    assert stored(web_app, rid)["docStatus"] == "preliminary"
    missing = sign(tara, rid, "")
    assert missing.status_code == 422 and 'id="password-error"' in missing.text
    right = sign(tara, rid)
    assert right.status_code == 303 and right.headers["location"] == f"/notes/{rid}?done=signed"
    note = stored(web_app, rid)
    assert note["docStatus"] == "final" and note["authenticator"]["display"] == "Tara"
    page = tara.get(f"/notes/{rid}?done=signed")
    assert "Signed</span>" in page.text
    signature = page.text.split('id="sig-heading"')[1]
    assert "<strong>Tara</strong>" in signature and "meaning: authored" in signature
    locked = tara.post(f"/notes/{rid}", data={
        "csrf": csrf_of(page.text), "version": "2", "action": "save", "text": "sneaky edit"})
    assert locked.status_code == 409 and "can no longer be changed" in locked.text
    assert text_of(stored(web_app, rid)) == "Integration after session two"
    signed = tara.get("/notes").text.split('id="signed-heading"')[1]
    assert f"/notes/{rid}" in signed.split('id="psy-heading"')[0]


def test_addendum_appears_under_the_signed_note(web_app: Any, clinic: dict[str, Any]) -> None:
    tara = clinic["tara"]
    rid = write(tara, clinic["pid"], "Original integration note")
    assert sign(tara, rid).status_code == 303
    form = tara.get(f"/notes/{rid}/addendum")
    assert form.status_code == 200 and "Original integration note" in form.text
    made = tara.post(f"/notes/{rid}/addendum", data={"csrf": csrf_of(form.text),
                                                     "text": "Addendum: patient called"})
    assert made.status_code == 303
    found = NOTE_ID.search(made.headers["location"])
    assert found
    add = found.group(1)
    assert stored(web_app, add)["relatesTo"] == [
        {"code": "appends", "target": {"reference": f"DocumentReference/{rid}"}}]
    signed = sign(tara, add)
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/notes/{rid}?done=signed#note-{add}"
    page = clinic["theo"].get(f"/notes/{rid}")
    addenda = page.text.split('id="addenda-heading"')[1]
    assert f'id="note-{add}"' in addenda and "Addendum: patient called" in addenda
    assert "<strong>Tara</strong>" in addenda
    assert "Original integration note" in page.text.split('id="addenda-heading"')[0]


def test_entered_in_error_needs_a_reason(web_app: Any, clinic: dict[str, Any]) -> None:
    tara, theo = clinic["tara"], clinic["theo"]
    rid = write(tara, clinic["pid"], "Wrong patient text")
    assert sign(tara, rid).status_code == 303
    theirs = theo.get(f"/notes/{rid}")
    assert 'action="/notes/' + rid + '/entered-in-error"' not in theirs.text
    refused = theo.post(f"/notes/{rid}/entered-in-error",
                        data={"csrf": csrf_of(theirs.text), "reason": "not mine"})
    assert refused.status_code == 403 and 'id="reason-error"' in refused.text
    page = tara.get(f"/notes/{rid}")
    empty = tara.post(f"/notes/{rid}/entered-in-error",
                      data={"csrf": csrf_of(page.text), "reason": " "})
    assert empty.status_code == 422
    assert 'id="reason-error">Give the reason' in empty.text
    assert stored(web_app, rid)["status"] == "current"
    done = tara.post(f"/notes/{rid}/entered-in-error",
                     data={"csrf": csrf_of(page.text), "reason": "Written for the wrong patient"})
    assert done.status_code == 303
    assert stored(web_app, rid)["status"] == "entered-in-error"
    shown = theo.get(f"/notes/{rid}")
    assert "Entered in error: Written for the wrong patient" in shown.text
    assert "Wrong patient text" in shown.text
    assert "reason: Written for the wrong patient" in shown.text


def test_a_physician_may_withdraw_a_signed_note(web_app: Any, clinic: dict[str, Any]) -> None:
    rid = write(clinic["tara"], clinic["pid"], "Signed by Tara")
    assert sign(clinic["tara"], rid).status_code == 303
    page = clinic["doc"].get(f"/notes/{rid}")
    assert f'action="/notes/{rid}/entered-in-error"' in page.text
    done = clinic["doc"].post(f"/notes/{rid}/entered-in-error",
                              data={"csrf": csrf_of(page.text), "reason": "Duplicate note"})
    assert done.status_code == 303
    assert stored(web_app, rid)["status"] == "entered-in-error"


def test_psychotherapy_notes_stay_apart(web_app: Any, clinic: dict[str, Any]) -> None:
    tara, theo, pid = clinic["tara"], clinic["theo"], clinic["pid"]
    ordinary = write(tara, pid, "Ordinary integration note")
    private = write(tara, pid, "Process notes only for me", kind="psychotherapy")
    assert "PSYTHPN" in {s["code"] for s in stored(web_app, private)["meta"]["security"]}
    mine = tara.get("/notes").text
    before, section = mine.split('id="psychotherapy-notes"')
    assert f"/notes/{private}" in section and f"/notes/{private}" not in before
    assert f"/notes/{ordinary}" in before and f"/notes/{ordinary}" not in section
    patient_page = tara.get(f"/patients/{pid}/notes").text
    assert f"/notes/{private}" in patient_page.split('id="psychotherapy-notes"')[1]
    assert "Process notes" not in tara.get(f"/patients/{pid}").text  # not in the timeline
    assert sign(tara, private).status_code == 303
    for other in ("theo", "doc"):
        client = clinic[other]
        assert f"/notes/{private}" not in client.get(f"/patients/{pid}/notes").text
        assert f"/notes/{ordinary}" in client.get(f"/patients/{pid}/notes").text
        assert client.get(f"/notes/{private}").status_code == 404
        assert "Process notes" not in client.get(f"/patients/{pid}").text
    assert theo.get(f"/notes/{private}/addendum").status_code == 404


def test_note_pages_are_audited(web_app: Any, clinic: dict[str, Any]) -> None:
    tara, pid = clinic["tara"], clinic["pid"]
    rid = write(tara, pid, "Audited note")
    tara.get(f"/notes/{rid}")
    tara.get("/notes")
    tara.get(f"/patients/{pid}/notes")
    clinic["theo"].get(f"/notes/{rid}")
    views = [(r.actor_id, json.loads(r.body).get("detail", {}).get("page"), r.rid)
             for r in ui_events(web_app) if pid in r.body]
    assert ("tara", "note-new", pid) in views
    assert ("tara", "note", rid) in views and ("theo", "note", rid) in views
    assert ("tara", "my-notes", None) in views and ("tara", "patient-notes", pid) in views


def audited(app: Any, interaction: str) -> list[Any]:
    from ehr_testing import sealed

    from ehr.audit import repository
    from ehr.audit.repository import AuditFilter, SortKey
    with unit_of_work(sealed(app.state.engine, app)) as session:
        return [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                if r.interaction == interaction]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="(?:field-error|notice error)"[^>]* '
                      rf'id="{re.escape(name)}-error"[^>]*>([^<]*)</p>', html)
    assert found, f"no error next to {name}"
    return found.group(1)


def test_a_colleague_on_the_care_team_reviews_and_signs(web_app: Any,
                                                        clinic: dict[str, Any]) -> None:
    tara, theo, doc = clinic["tara"], clinic["theo"], clinic["doc"]
    rid = write(tara, clinic["pid"], "Integration: patient reports calmer week")
    assert 'action="/notes/' + rid + '/review"' not in theo.get(f"/notes/{rid}").text  # draft
    assert sign(tara, rid).status_code == 303
    assert "/review" not in tara.get(f"/notes/{rid}").text  # an author does not review
    page = theo.get(f"/notes/{rid}")
    assert f'action="/notes/{rid}/review"' in page.text and "Review and sign" in page.text
    token = csrf_of(page.text)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    empty = theo.post(f"/notes/{rid}/review", data={"csrf": token, "version": version.group(1)})
    assert empty.status_code == 422 and "password" in field_error(empty.text, "review_password")
    wrong = theo.post(f"/notes/{rid}/review", data={
        "csrf": token, "version": version.group(1), "review_password": "not my password"})
    assert wrong.status_code == 422
    assert "not correct" in field_error(wrong.text, "review_password")
    stale = doc.post(f"/notes/{rid}/review", data={
        "csrf": csrf_of(doc.get(f"/notes/{rid}").text), "version": "1",
        "review_password": PASSWORD})
    assert stale.status_code == 412 and "changed" in field_error(stale.text, "review")
    own = tara.post(f"/notes/{rid}/review", data={
        "csrf": csrf_of(tara.get(f"/notes/{rid}").text), "review_password": PASSWORD})
    assert own.status_code == 422 and "own note" in field_error(own.text, "review")

    # Off the care team: break-the-glass lets a physician read the note, not review it.
    make_user(web_app, "drout", "physician", practitioner="Practitioner/drout")
    with TestClient(web_app, follow_redirects=False) as outsider:
        sign_in(outsider, "drout")
        outsider.post("/patients/break-glass", data={
            "csrf": csrf_of(outsider.get("/patients").text), "identifier": "MRN-N1",
            "reason": "covering an urgent call tonight"})
        seen = outsider.get(f"/notes/{rid}")
        assert seen.status_code == 200
        off_team = outsider.post(f"/notes/{rid}/review", data={
            "csrf": csrf_of(seen.text), "review_password": PASSWORD})
    assert off_team.status_code == 403 and "care team" in field_error(off_team.text, "review")

    done = theo.post(f"/notes/{rid}/review", data={
        "csrf": token, "version": version.group(1), "review_password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"].endswith("done=reviewed")
    shown = theo.get(done.headers["location"]).text
    assert "Review signed." in shown
    signed = re.findall(r'<span class="badge ok">(Signed|Reviewed)</span>\s*<strong>(\w+)',
                        shown)
    assert signed == [("Signed", "Tara"), ("Reviewed", "Theo")]
    note = stored(web_app, rid)
    assert note["docStatus"] == "final" and note["meta"]["versionId"] == version.group(1)
    signs = [json.loads(r.body)["detail"]["meaning"] for r in audited(web_app, "operation:sign")
             if r.status == 200]
    assert signs == ["authored", "reviewed"]


def test_the_author_shares_a_psychotherapy_note_by_name(web_app: Any,
                                                        clinic: dict[str, Any]) -> None:
    tara, theo, pid = clinic["tara"], clinic["theo"], clinic["pid"]
    private = write(tara, pid, "Process notes, shared on request", kind="psychotherapy")
    assert theo.get(f"/notes/{private}").status_code == 404
    page = tara.get(f"/notes/{private}")
    assert 'action="/notes/' + private + '/grant"' in page.text and "Nobody else." in page.text
    token = csrf_of(page.text)
    blank = tara.post(f"/notes/{private}/grant", data={"csrf": token, "grant_user": "",
                                                       "grant_reason": ""})
    assert blank.status_code == 422
    assert "user name" in field_error(blank.text, "grant_user")
    assert "reason" in field_error(blank.text, "grant_reason")
    ghost = tara.post(f"/notes/{private}/grant", data={"csrf": token, "grant_user": "ghost",
                                                       "grant_reason": "consent"})
    assert "no active user" in field_error(ghost.text, "grant_user")
    herself = tara.post(f"/notes/{private}/grant", data={"csrf": token, "grant_user": "Tara",
                                                         "grant_reason": "consent"})
    assert "already" in field_error(herself.text, "grant_user")
    assert theo.get(f"/notes/{private}").status_code == 404

    shared = tara.post(f"/notes/{private}/grant", data={
        "csrf": token, "grant_user": "Theo", "grant_reason": "patient's written consent"})
    assert shared.status_code == 303
    listed = tara.get(f"/notes/{private}").text
    assert '<ul id="grantees"><li>theo</li></ul>' in listed
    theirs = theo.get(f"/notes/{private}")
    assert theirs.status_code == 200 and "Process notes, shared on request" in theirs.text
    assert "/grant" not in theirs.text  # only the author shares
    refused = theo.post(f"/notes/{private}/grant", data={
        "csrf": csrf_of(theirs.text), "grant_user": "doc", "grant_reason": "x"})
    assert refused.status_code == 403 and "author" in field_error(refused.text, "grant_user")

    nobody = tara.post(f"/notes/{private}/revoke", data={"csrf": token, "revoke_user": ""})
    assert nobody.status_code == 422 and "Choose" in field_error(nobody.text, "revoke_user")
    never = tara.post(f"/notes/{private}/revoke", data={"csrf": token, "revoke_user": "doc"})
    assert never.status_code == 422 and "no access" in field_error(never.text, "revoke_user")
    revoked = tara.post(f"/notes/{private}/revoke", data={"csrf": token,
                                                          "revoke_user": "theo"})
    assert revoked.status_code == 303
    assert theo.get(f"/notes/{private}").status_code == 404
    assert "Nobody else." in tara.get(f"/notes/{private}").text

    ordinary = write(tara, pid, "An integration note")
    assert "/grant" not in tara.get(f"/notes/{ordinary}").text
    not_private = tara.post(f"/notes/{ordinary}/grant", data={
        "csrf": token, "grant_user": "theo", "grant_reason": "x"})
    assert not_private.status_code == 422
    assert "psychotherapy" in field_error(not_private.text, "grant_user")
    assert [json.loads(r.body)["detail"]["grantee"]
            for r in audited(web_app, "operation:grant-access") if r.status == 200] == ["theo"]
    assert len([r for r in audited(web_app, "operation:revoke-access") if r.status == 200]) == 2
