"""Every user's own account page: the password change asks for the current password (counted
like a sign-in), checks the new one next to its field, ends the user's other sign-ins, and is
audited without the passwords. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from ehr.web.account import WRONG_CURRENT
from web.signing_in import PASSWORD, csrf_of, make_user, sign_in
from web.test_admin_pages import field_error, security_events

NEW_PASSWORD = "a brand new passphrase"


def signed_in(app: Any, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, username).status_code == 303
    return client


def change(client: TestClient, current: str, new: str, again: str | None = None,
           csrf: str | None = None) -> Any:
    token = csrf if csrf is not None else csrf_of(client.get("/account").text)
    return client.post("/account/password", data={
        "csrf": token, "current": current, "password": new,
        "password2": new if again is None else again})


def test_every_role_has_an_account_page_linked_from_the_header(web_app: Any) -> None:
    for name, role in (("phil", "physician"), ("nora", "nurse"), ("theo", "therapist"),
                       ("cora", "compliance"), ("adam", "admin")):
        make_user(web_app, name, role)
        client = signed_in(web_app, name)
        page = client.get("/account")
        assert page.status_code == 200, (role, page.text[:300])
        assert f"({name})" in page.text and role in page.text
        assert '<a class="who" href="/account" aria-current="page">' in page.text
    anonymous = TestClient(web_app, follow_redirects=False)
    assert anonymous.get("/account").status_code == 303
    assert anonymous.get("/account").headers["location"] == "/login"


def test_a_user_changes_their_password_and_other_sign_ins_end(web_app: Any) -> None:
    make_user(web_app, "theo", "therapist")
    here, elsewhere = signed_in(web_app, "theo"), signed_in(web_app, "theo")
    done = change(here, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    assert "Password changed" in here.get("/account?done=password").text
    # This sign-in goes on; the other one is over; only the new password works from now on.
    assert here.get("/account").status_code == 200
    assert elsewhere.get("/account").status_code == 303
    fresh = TestClient(web_app, follow_redirects=False)
    assert sign_in(fresh, "theo", PASSWORD).status_code == 401
    assert sign_in(fresh, "theo", NEW_PASSWORD).status_code == 303
    events = security_events(web_app, "password-changed")
    assert len(events) == 1 and events[0]["actor"] == "theo"
    assert events[0]["detail"] == {"username": "theo", "other_sessions_ended": 1}
    assert NEW_PASSWORD not in json.dumps(events) and PASSWORD not in json.dumps(events)


def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failed_sign_in(
        web_app: Any) -> None:
    make_user(web_app, "nora", "nurse")
    client = signed_in(web_app, "nora")
    refused = change(client, "not my password", NEW_PASSWORD)
    assert refused.status_code == 422
    assert field_error(refused.text, "current") == WRONG_CURRENT
    assert NEW_PASSWORD not in refused.text and "not my password" not in refused.text
    assert security_events(web_app, "password-changed") == []
    assert [e["detail"].get("username") for e in security_events(web_app, "login-failed")] \
        == ["nora"]
    fresh = TestClient(web_app, follow_redirects=False)
    assert sign_in(fresh, "nora", NEW_PASSWORD).status_code == 401
    assert sign_in(fresh, "nora", PASSWORD).status_code == 303


def test_wrong_current_passwords_lock_the_account_like_sign_ins(web_app: Any) -> None:
    make_user(web_app, "cora", "compliance")
    client = signed_in(web_app, "cora")
    token = csrf_of(client.get("/account").text)
    for _ in range(web_app.state.auth.users.auth.auth_lockout_attempts):
        assert change(client, "guessing wrongly", NEW_PASSWORD, csrf=token).status_code == 422
    # Locked: even the right current password is refused now, and so is signing in.
    assert change(client, PASSWORD, NEW_PASSWORD, csrf=token).status_code == 422
    assert sign_in(TestClient(web_app, follow_redirects=False), "cora").status_code == 401
    assert len(security_events(web_app, "lockout")) == 1


def test_the_new_password_is_checked_next_to_its_field(web_app: Any) -> None:
    make_user(web_app, "phil", "physician")
    client = signed_in(web_app, "phil")
    short = change(client, PASSWORD, "short")
    assert short.status_code == 422 and "at least 12" in field_error(short.text, "password")
    same = change(client, PASSWORD, PASSWORD)
    assert same.status_code == 422 and "different" in field_error(same.text, "password")
    differ = change(client, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert differ.status_code == 422 and "differ" in field_error(differ.text, "password2")
    empty = change(client, "", NEW_PASSWORD)
    assert empty.status_code == 422 and "current" in field_error(empty.text, "current")
    for response in (short, same, differ, empty):
        assert 'aria-invalid="true"' in response.text and NEW_PASSWORD not in response.text
    # None of these counted as a failed sign-in: the current password was never checked.
    assert security_events(web_app, "login-failed") == []
    assert sign_in(TestClient(web_app, follow_redirects=False), "phil").status_code == 303


def test_a_password_change_needs_the_pages_csrf_token(web_app: Any) -> None:
    make_user(web_app, "adam", "admin")
    client = signed_in(web_app, "adam")
    forged = change(client, PASSWORD, NEW_PASSWORD, csrf="forged")
    assert forged.status_code == 403
    assert sign_in(TestClient(web_app, follow_redirects=False), "adam").status_code == 303


def test_a_new_password_the_policy_refuses_is_refused_before_any_password_check(
        web_app: Any) -> None:
    make_user(web_app, "rita", "therapist")
    client = signed_in(web_app, "rita")
    blank = change(client, PASSWORD, " " * 20)
    assert blank.status_code == 422 and "blank" in field_error(blank.text, "password")
    assert security_events(web_app, "login-failed") == []
    assert sign_in(TestClient(web_app, follow_redirects=False), "rita").status_code == 303
