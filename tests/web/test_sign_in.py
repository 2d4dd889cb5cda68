"""Sign-in, session cookie, CSRF and sign-out (issue 8 item 1)."""

from __future__ import annotations

from typing import Any

from ehr_testing import sealed
from fastapi.testclient import TestClient

from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.db import unit_of_work
from web.signing_in import csrf_of, make_user, sign_in


def interactions(app: Any) -> list[str]:
    with unit_of_work(sealed(app.state.engine, app)) as session:
        return [r.interaction for r in repository.stream(session, AuditFilter(),
                                                         [SortKey("seq", False)])]


def test_pages_need_a_session(browser: TestClient) -> None:
    for path in ("/", "/patients", "/compliance/audit", "/admin/users"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


def test_each_role_lands_on_its_start_page(web_app: Any, browser: TestClient) -> None:
    expected = {"physician": "/patients", "nurse": "/patients", "therapist": "/patients",
                "compliance": "/compliance/audit", "admin": "/admin/users"}
    for role, start in expected.items():
        make_user(web_app, f"{role}1", role)
        browser.cookies.clear()
        response = sign_in(browser, f"{role}1")
        assert response.status_code == 303, response.text
        assert response.headers["location"] == start
        page = browser.get(start)
        assert page.status_code == 200, page.text
        assert f"{role.title()}1" in page.text


def test_cookie_is_httponly_and_samesite(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "drcookie")
    cookie = sign_in(browser, "drcookie").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie


def test_wrong_user_and_wrong_password_read_alike(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "drreal")
    wrong_password = sign_in(browser, "drreal", "not the password at all")
    unknown = sign_in(browser, "drnobody", "not the password at all")
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.text.replace("drreal", "X") == unknown.text.replace("drnobody", "X")
    assert "locked for 15 minutes" in unknown.text
    assert "login-failed" in interactions(web_app)


def test_lockout_refuses_even_the_right_password(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "drlocked")
    for _ in range(5):
        assert sign_in(browser, "drlocked", "wrong password guess").status_code == 401
    assert sign_in(browser, "drlocked").status_code == 401
    assert "lockout" in interactions(web_app)


def test_forms_need_the_session_csrf_token(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "admin1", "admin")
    make_user(web_app, "victim", "nurse")
    sign_in(browser, "admin1")
    forged = browser.post("/admin/users/victim/disable", data={"csrf": "forged"})
    assert forged.status_code == 403
    missing = browser.post("/admin/users/victim/disable")
    assert missing.status_code == 403
    with unit_of_work(web_app.state.engine) as session:
        user = web_app.state.auth.users.get(session, "victim")
    assert user is not None and user.active
    token = csrf_of(browser.get("/admin/users").text)
    assert browser.post("/admin/users/victim/disable", data={"csrf": token}).status_code == 303
    with unit_of_work(web_app.state.engine) as session:
        user = web_app.state.auth.users.get(session, "victim")
    assert user is not None and not user.active


def test_sign_out_ends_the_session_on_the_server(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "drout")
    sign_in(browser, "drout")
    stolen = browser.cookies.get("ehr_session")
    token = csrf_of(browser.get("/patients").text)
    assert browser.post("/logout", data={"csrf": token}).status_code == 303
    # Replaying the old cookie value after sign-out gets nothing.
    browser.cookies.set("ehr_session", stolen or "")
    assert browser.get("/patients").status_code == 303
    assert "logout" in interactions(web_app)


def test_disabled_user_is_signed_out_at_once(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "drgone")
    sign_in(browser, "drgone")
    assert browser.get("/patients").status_code == 200
    with unit_of_work(web_app.state.engine, write=True) as session:
        web_app.state.auth.users.set_active(session, "drgone", False)
    assert browser.get("/patients").status_code == 303


def test_role_pages_are_refused_to_other_roles(web_app: Any, browser: TestClient) -> None:
    make_user(web_app, "therapist1", "therapist")
    sign_in(browser, "therapist1")
    for path in ("/compliance/audit", "/admin/users", "/admin/clients"):
        response = browser.get(path)
        assert response.status_code == 403, path
        assert "Not available to your role" in response.text
