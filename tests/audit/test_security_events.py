"""Security events in the audit trail (issue 4 item 1): tokens issued and refused, login
failures and lockouts, re-authentication, break-the-glass grants and reviews, and user and
client administration from the CLI; on SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import typer
from auth.signing import STRONG_PASSWORD, es384_key
from ehr_testing import sealed
from sqlalchemy import Engine, text
from sqlmodel import select
from typer.testing import CliRunner

from ehr.auth.cli import register
from ehr.auth.oauth import JWT_BEARER
from ehr.auth.settings import AuthSettings
from ehr.auth.tables import UserRow
from ehr.config import Settings
from ehr.db import unit_of_work

UA = "security-test/2.0"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WRONG = "not the password at all"


def records(engine: Engine, since: int = 0) -> list[dict[str, Any]]:
    with sealed(engine).connect() as conn:
        rows = conn.execute(text("SELECT body, category, interaction, actor_id FROM "
                                 "audit_record WHERE seq > :s ORDER BY seq"), {"s": since})
        out = []
        for body, category, interaction, actor_id in rows:
            record = json.loads(body)
            assert (record["category"], record["interaction"], record["actor"]["id"]) == (
                category, interaction, actor_id)
            out.append(record)
    return out


def bodies(engine: Engine) -> str:
    with sealed(engine).connect() as conn:
        return "\n".join(r[0] for r in conn.execute(text("SELECT body FROM audit_record")))


@pytest.fixture
def http(client: Any) -> Any:
    client.headers.pop("Authorization", None)
    client.headers.update({"User-Agent": UA})
    return client


@pytest.fixture
def alice(app: Any, engine: Engine) -> str:
    with unit_of_work(engine) as s:
        app.state.auth.users.create(s, username="alice", password=STRONG_PASSWORD,
                                    roles=["physician"], display_name="Dr Alice",
                                    practitioner="Practitioner/alice")
    return "alice"


def token(http: Any, username: str, password: str, **extra: str) -> Any:
    request_id = uuid.uuid4().hex
    response = http.post("/auth/token", data={"grant_type": "password", "username": username,
                                              "password": password, **extra},
                         headers={**FORM, "X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id
    return response


def security(record: dict[str, Any], interaction: str, actor: str, kind: str,
             outcome: str, request_id: str | None = None) -> None:
    assert record["category"] == "security"
    assert record["interaction"] == interaction
    assert (record["actor"]["id"], record["actor"]["kind"]) == (actor, kind)
    assert record["outcome"] == outcome
    assert record["source"] == {"ip": "testclient", "user_agent": UA}
    if request_id is not None:
        assert record["request_id"] == request_id


def test_token_issued_for_a_password_grant(http: Any, alice: str, engine: Engine) -> None:
    response = token(http, alice, STRONG_PASSWORD, scope="user/Patient.rs")
    assert response.status_code == 200, response.text
    [record] = records(engine)
    security(record, "token-issued", "alice", "user", "success",
             response.headers["X-Request-ID"])
    assert record["actor"]["roles"] == ["physician"] and record["actor"]["display"] == "Dr Alice"
    assert record["detail"]["grant_type"] == "password"
    assert record["detail"]["scope"] == response.json()["scope"] == "user/Patient.rs"


@pytest.mark.parametrize("case", ["unknown user", "wrong password", "disabled"])
def test_login_failures_say_why_in_the_trail_only(http: Any, alice: str, app: Any,
                                                  engine: Engine, case: str) -> None:
    reference = token(http, "nobody-here", WRONG)
    username, password = {"unknown user": ("ghost", WRONG), "wrong password": (alice, WRONG),
                          "disabled": (alice, STRONG_PASSWORD)}[case]
    if case == "disabled":
        with unit_of_work(engine) as s:
            app.state.auth.users.set_active(s, alice, False)
    seen = len(records(engine))
    response = token(http, username, password)
    # The caller learns nothing: the same status and body whatever went wrong.
    assert (response.status_code, response.json()) == (reference.status_code, reference.json())
    failed, refused = records(engine, seen)
    security(failed, "login-failed", "anonymous", "anonymous", "denied",
             response.headers["X-Request-ID"])
    assert failed["detail"] == {"username": username, "reason": case}
    security(refused, "token-refused", "anonymous", "anonymous", "denied",
             response.headers["X-Request-ID"])
    assert refused["status"] == response.status_code
    assert refused["detail"]["username"] == username
    assert refused["detail"]["error"] == response.json()["error"] == "invalid_grant"
    assert password not in bodies(engine)


def test_fifth_failure_locks_and_is_recorded_with_the_count(
        http: Any, alice: str, engine: Engine) -> None:
    attempts = AuthSettings().auth_lockout_attempts
    for _ in range(attempts - 1):
        assert token(http, alice, WRONG).status_code == 400
    assert not [r for r in records(engine) if r["interaction"] == "lockout"]
    seen = len(records(engine))
    token(http, alice, WRONG)
    failed, lockout, refused = records(engine, seen)
    assert failed["interaction"] == "login-failed" and refused["interaction"] == "token-refused"
    security(lockout, "lockout", "anonymous", "anonymous", "denied")
    assert lockout["detail"]["username"] == alice
    assert lockout["detail"]["attempts"] == attempts
    with unit_of_work(engine, write=False) as s:
        row = s.exec(select(UserRow).where(UserRow.username == alice)).one()
        assert row.failed_attempts == attempts and row.locked_until is not None
    # The right password while locked is refused, and the trail says why.
    seen = len(records(engine))
    assert token(http, alice, STRONG_PASSWORD).status_code == 400
    assert records(engine, seen)[0]["detail"]["reason"] == "locked"
    assert WRONG not in bodies(engine) and STRONG_PASSWORD not in bodies(engine)


def test_refusals_before_any_credential_check_are_recorded(http: Any, engine: Engine) -> None:
    bad_grant = http.post("/auth/token", data={"grant_type": "implicit"}, headers=FORM)
    not_a_form = http.post("/auth/token", content=b"{}",
                           headers={"Content-Type": "application/json"})
    unknown_client = http.post("/auth/token", headers=FORM, data={
        "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
        "client_assertion": es384_key().sign({"iss": "who", "sub": "who", "jti": "1"})})
    first, second, third = records(engine)
    for record, response in ((first, bad_grant), (second, not_a_form),
                             (third, unknown_client)):
        security(record, "token-refused", "anonymous", "anonymous",
                 "denied" if response.status_code == 401 else "error",
                 response.headers["X-Request-ID"])
        assert record["detail"]["error"] == response.json()["error"]
        assert record["status"] == response.status_code
    assert first["detail"]["grant_type"] == "implicit"
    assert third["detail"]["client_id"] == "who"


def test_client_credentials_token_issued(http: Any, app: Any, engine: Engine) -> None:
    key = es384_key()
    with unit_of_work(engine) as s:
        app.state.auth.clients.create(s, client_id="lab-feed", jwks=key.jwks_json(),
                                      scopes="system/Observation.rs", name="Lab feed")
    now = int(time.time())
    assertion = key.sign({"iss": "lab-feed", "sub": "lab-feed", "jti": uuid.uuid4().hex,
                          "aud": "http://testserver/auth/token", "exp": now + 60, "iat": now})
    response = http.post("/auth/token", headers=FORM, data={
        "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion})
    assert response.status_code == 200, response.text
    [record] = records(engine)
    security(record, "token-issued", "lab-feed", "client", "success",
             response.headers["X-Request-ID"])
    assert record["detail"]["grant_type"] == "client_credentials"
    assert record["detail"]["scope"] == "system/Observation.rs"


def test_reauthentication_success_and_failure(http: Any, alice: str, engine: Engine) -> None:
    access = token(http, alice, STRONG_PASSWORD).json()["access_token"]
    auth = {"Authorization": f"Bearer {access}"}
    seen = len(records(engine))
    ok = http.post("/auth/reauth", json={"password": STRONG_PASSWORD, "action": "sign-note"},
                   headers=auth)
    assert ok.status_code == 200, ok.text
    [record] = records(engine, seen)
    security(record, "reauth", "alice", "user", "success", ok.headers["X-Request-ID"])
    assert record["detail"] == {"action": "sign-note"}
    bad = http.post("/auth/reauth", json={"password": WRONG, "action": "sign-note"}, headers=auth)
    assert bad.status_code == 403
    failed, reauth = records(engine, seen + 1)
    security(failed, "login-failed", "alice", "user", "denied")
    assert failed["detail"]["reason"] == "wrong password"
    security(reauth, "reauth", "alice", "user", "denied")
    assert reauth["request_id"] == failed["request_id"]
    assert WRONG not in bodies(engine)


def test_break_glass_grant_refusal_and_review(app: Any, http: Any, bearer_header: Any,
                                              engine: Engine) -> None:
    system = bearer_header(app, subject="seed", kind="client", scopes="system/*.cruds")
    pid = http.post("/fhir/Patient", json={"resourceType": "Patient"},
                    headers={**system, "Content-Type": "application/fhir+json"}).json()["id"]
    doc = bearer_header(app, subject="er-doc", kind="user", scopes="user/*.cruds",
                        roles=("physician",), practitioner="Practitioner/er-doc")
    officer = bearer_header(app, subject="officer", kind="user", scopes="user/AuditEvent.rs",
                            roles=("compliance",))
    seen = len(records(engine))
    refused = http.post("/auth/break-glass", json={"patient": pid, "reason": "x"},
                        headers=officer)
    assert refused.status_code == 403
    granted = http.post("/auth/break-glass", headers=doc, json={
        "patient": pid, "reason": "Unconscious in the ED, need allergies"})
    assert granted.status_code == 201, granted.text
    grant_id = granted.json()["id"]
    queue = http.get("/auth/break-glass", headers=officer)
    assert queue.status_code == 200
    reviewed = http.post(f"/auth/break-glass/{grant_id}/review", json={"note": "justified"},
                         headers=officer)
    assert reviewed.status_code == 204, reviewed.text
    denied, grant, listing, review = records(engine, seen)
    security(denied, "break-glass-refused", "officer", "user", "denied",
             refused.headers["X-Request-ID"])
    security(grant, "break-glass-granted", "er-doc", "user", "success",
             granted.headers["X-Request-ID"])
    assert grant["purpose_of_use"] == "ETREAT" and grant["patients"] == [pid]
    assert grant["detail"]["grant"] == grant_id
    security(listing, "break-glass-queue", "officer", "user", "success")
    assert listing["patients"] == [pid]
    security(review, "break-glass-reviewed", "officer", "user", "success",
             reviewed.headers["X-Request-ID"])
    assert review["patients"] == [pid] and review["detail"]["grantee"] == "er-doc"


def test_cli_administration_is_recorded(engine: Engine, settings: Settings,
                                        tmp_path: Path) -> None:
    cli = typer.Typer()
    register(cli, settings_factory=lambda: settings, engine_factory=lambda _s: engine,
             auth_factory=lambda: AuthSettings(auth_argon2_time_cost=1,
                                               auth_argon2_memory_kib=8 * 1024,
                                               auth_argon2_parallelism=1))
    runner = CliRunner()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(es384_key().jwks_json())
    for args, stdin in ((["user", "create", "dana", "--role", "nurse", "--password-stdin"],
                         STRONG_PASSWORD + "\n"),
                        (["user", "disable", "dana"], None), (["user", "enable", "dana"], None),
                        (["client", "create", "feed", "--jwks", str(jwks), "--scope",
                          "system/Patient.rs"], None),
                        (["client", "disable", "feed"], None)):
        result = runner.invoke(cli, args, input=stdin)
        assert result.exit_code == 0, result.output
    trail = records(engine)
    assert [r["interaction"] for r in trail] == [
        "user-created", "user-disabled", "user-enabled", "client-created", "client-disabled"]
    for record in trail:
        assert record["category"] == "security" and record["outcome"] == "success"
        assert (record["actor"]["id"], record["actor"]["kind"]) == ("ehr", "system")
        assert record["source"]["user_agent"] == "ehr cli"
        assert record["detail"]["os_user"] == getpass.getuser()
    assert trail[0]["detail"]["username"] == "dana" and trail[0]["detail"]["roles"] == ["nurse"]
    assert trail[3]["detail"]["client_id"] == "feed"
    assert STRONG_PASSWORD not in bodies(engine)
    # A refused command changes nothing and records nothing.
    assert runner.invoke(cli, ["user", "disable", "nobody"]).exit_code == 1
    assert len(records(engine)) == len(trail)
