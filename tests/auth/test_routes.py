"""The auth endpoints over HTTP, through a small app that includes the router."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from auth.signing import STRONG_PASSWORD, FakeClock, rs384_key
from ehr.auth.oauth import JWT_BEARER
from ehr.auth.reauth import InvalidSigningAssertion
from ehr.auth.routes import build_auth_router
from ehr.auth.service import AuthService
from ehr.db import unit_of_work
from ehr.errors import EhrError

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def http(service: AuthService) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(build_auth_router(service))

    @app.exception_handler(EhrError)
    async def ehr_error(request: Request, exc: EhrError) -> JSONResponse:
        return JSONResponse({"detail": exc.diagnostics, "issues": exc.outcome()["issue"]},
                            exc.status, headers=exc.headers)

    with unit_of_work(service.engine) as s:
        service.users.create(s, username="pat", password=STRONG_PASSWORD, roles=["physician"],
                             display_name="Dr Pat Lee", practitioner="Practitioner/p1")
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def _token(http: TestClient, scope: str | None = None) -> dict[str, object]:
    data = {"grant_type": "password", "username": "pat", "password": STRONG_PASSWORD}
    if scope:
        data["scope"] = scope
    response = http.post("/auth/token", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def test_smart_configuration(http: TestClient) -> None:
    config = http.get("/fhir/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == "http://testserver/auth/token"
    assert config["jwks_uri"] == "http://testserver/auth/jwks"
    assert set(config["grant_types_supported"]) == {"password", "client_credentials"}
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"ES384", "RS384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert "permission-v2" in config["capabilities"]
    assert config["scopes_supported"]
    # Nothing a client could try and find missing: there is no authorization endpoint and no
    # OpenID Connect.
    assert not {"authorization_endpoint", "response_types_supported",
                "code_challenge_methods_supported"} & set(config)
    assert not {"openid", "fhirUser"} & set(config["scopes_supported"])
    assert not {"launch-ehr", "launch-standalone", "sso-openid-connect"} & \
        set(config["capabilities"])


def test_jwks_publishes_the_verification_key(http: TestClient, service: AuthService) -> None:
    keys = http.get("/auth/jwks").json()["keys"]
    assert [k["kid"] for k in keys] == [service.key.kid]
    assert all("d" not in k for k in keys)


def test_password_token_and_me(http: TestClient) -> None:
    body = _token(http, "user/Observation.rs launch")
    assert body["token_type"] == "Bearer" and body["scope"] == "user/Observation.rs"
    me = http.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["practitioner"] == "Practitioner/p1"
    assert me.json()["roles"] == ["physician"]


def test_token_errors_are_rfc6749_json(http: TestClient) -> None:
    wrong = http.post("/auth/token", data={"grant_type": "password", "username": "pat",
                                           "password": "not the password"})
    unknown = http.post("/auth/token", data={"grant_type": "password", "username": "nobody",
                                             "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_grant"
    as_json = http.post("/auth/token", json={"grant_type": "password"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    unsupported = http.post("/auth/token", data={"grant_type": "implicit"})
    assert unsupported.json()["error"] == "unsupported_grant_type"


def _lab_assertion(service: AuthService, clock: FakeClock, scopes: str) -> str:
    """Register the client ``lab`` with ``scopes``; a signed assertion of it."""
    key = rs384_key()
    with unit_of_work(service.engine) as s:
        service.clients.create(s, client_id="lab", jwks=key.jwks_json(), scopes=scopes)
    return key.sign({"iss": "lab", "sub": "lab", "aud": "http://testserver/auth/token",
                     "exp": int(clock()) + 60, "jti": uuid.uuid4().hex})


def test_backend_services_over_http(http: TestClient, service: AuthService,
                                    clock: FakeClock) -> None:
    assertion = _lab_assertion(service, clock, "system/Observation.cruds")
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion, "scope": "system/Observation.rs"}
    ok = http.post("/auth/token", data=form)
    assert ok.status_code == 200, ok.text
    assert ok.json()["scope"] == "system/Observation.rs"
    replay = http.post("/auth/token", data=form)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer not.a.token"])
def test_bad_bearer_is_401_with_challenge(http: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = http.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    if header == "Bearer not.a.token":
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_reauth_endpoint(http: TestClient, service: AuthService) -> None:
    auth = {"Authorization": f"Bearer {_token(http)['access_token']}"}
    ok = http.post("/auth/reauth", json={"password": STRONG_PASSWORD, "action": "note-signing"},
                   headers=auth)
    assert ok.status_code == 200, ok.text
    with unit_of_work(service.engine) as s:
        assertion = service.assertions.verify(s, ok.json()["assertion"], "pat", "note-signing")
    assert assertion.display_name == "Dr Pat Lee"
    refused = http.post("/auth/reauth", data={"password": "not the password",
                                              "action": "note-signing"}, headers=auth)
    assert refused.status_code == 403
    assert http.post("/auth/reauth", json={"password": STRONG_PASSWORD,
                                           "action": "note-signing"}).status_code == 401
    assert http.post("/auth/reauth", json={}, headers=auth).status_code == 400
    for action in (None, "", " ", "x" * 65):
        body = {"password": STRONG_PASSWORD} | ({} if action is None else {"action": action})
        unnamed = http.post("/auth/reauth", json=body, headers=auth)
        assert unnamed.status_code == 400 and "action" in unnamed.text
    # An assertion is accepted only by the action it names.
    other = http.post("/auth/reauth", json={"password": STRONG_PASSWORD,
                                            "action": "ledger-witness"}, headers=auth)
    with pytest.raises(InvalidSigningAssertion), unit_of_work(service.engine) as s:
        service.assertions.verify(s, other.json()["assertion"], "pat", "note-signing")


def test_disabling_an_account_ends_its_tokens_within_the_check_interval(
        http: TestClient, service: AuthService, clock: FakeClock) -> None:
    auth = {"Authorization": f"Bearer {_token(http)['access_token']}"}
    assert http.get("/auth/me", headers=auth).status_code == 200
    with unit_of_work(service.engine) as s:
        service.users.set_active(s, "pat", False)
    # A process trusts its last look at the account for the check interval, not longer.
    assert http.get("/auth/me", headers=auth).status_code == 200
    clock.advance(service.auth.auth_account_check_seconds)
    refused = http.get("/auth/me", headers=auth)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # The token itself is still unexpired: enabling the account again restores it.
    with unit_of_work(service.engine) as s:
        service.users.set_active(s, "pat", True)
    clock.advance(service.auth.auth_account_check_seconds)
    assert http.get("/auth/me", headers=auth).status_code == 200


def test_disabling_a_client_ends_its_tokens(http: TestClient, service: AuthService,
                                            clock: FakeClock) -> None:
    assertion = _lab_assertion(service, clock, "system/Observation.rs")
    token = http.post("/auth/token", data={
        "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert http.get("/auth/me", headers=auth).status_code == 200
    with unit_of_work(service.engine) as s:
        service.clients.set_active(s, "lab", False)
    clock.advance(service.auth.auth_account_check_seconds)
    assert http.get("/auth/me", headers=auth).status_code == 401
