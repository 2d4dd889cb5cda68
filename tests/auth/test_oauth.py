"""The token endpoint logic: password grant and SMART Backend Services, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from auth.signing import STRONG_PASSWORD, ClientKey, FakeClock, es384_key, rs384_key
from ehr.auth.oauth import JWT_BEARER, OAuthError, parse_form
from ehr.auth.service import AuthService
from ehr.auth.tokens import ServerUrls
from ehr.db import unit_of_work


def _user(service: AuthService, username: str, *roles: str) -> None:
    with unit_of_work(service.engine) as s:
        service.users.create(s, username=username, password=STRONG_PASSWORD, roles=roles,
                             display_name=username.title())


def _password_grant(service: AuthService, urls: ServerUrls, username: str,
                    scope: str | None = None, password: str = STRONG_PASSWORD) -> Any:
    form = {"grant_type": "password", "username": username, "password": password}
    if scope is not None:
        form["scope"] = scope
    return service.token_endpoint.handle(form, urls)


def _error(call: Any) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        call()
    return info.value


def test_password_grant_issues_the_role_ceiling(service: AuthService, urls: ServerUrls) -> None:
    _user(service, "nina", "nurse")
    response = _password_grant(service, urls, "nina")
    assert response.body()["token_type"] == "Bearer"
    assert response.expires_in == service.auth.auth_token_ttl_seconds
    claims = service.tokens.verify(response.access_token, urls)
    assert claims.roles == {"nurse"}
    assert str(claims.scopes) == response.scope
    assert claims.scopes.allows("user", "MedicationAdministration", "c")
    assert not claims.scopes.allows("user", "MedicationRequest", "c")


def test_scope_beyond_the_role_is_dropped(service: AuthService, urls: ServerUrls) -> None:
    _user(service, "theo", "therapist")
    response = _password_grant(
        service, urls, "theo",
        "user/MedicationAdministration.c user/QuestionnaireResponse.cru openid")
    assert response.scope == "user/QuestionnaireResponse.cru"


def test_nothing_grantable_is_invalid_scope(service: AuthService, urls: ServerUrls) -> None:
    _user(service, "theo", "therapist")
    err = _error(lambda: _password_grant(service, urls, "theo",
                                         "user/MedicationAdministration.c"))
    assert (err.error, err.status) == ("invalid_scope", 400)
    err = _error(lambda: _password_grant(service, urls, "theo", "user/Patient.bogus"))
    assert err.error == "invalid_scope"


def test_admin_gets_no_clinical_scope(service: AuthService, urls: ServerUrls) -> None:
    _user(service, "ada", "admin")
    response = _password_grant(service, urls, "ada")
    assert response.scope == ""
    assert service.tokens.verify(response.access_token, urls).roles == {"admin"}
    assert _error(lambda: _password_grant(service, urls, "ada", "user/Patient.r")).error == \
        "invalid_scope"


def test_wrong_user_and_wrong_password_same_error(service: AuthService,
                                                  urls: ServerUrls) -> None:
    _user(service, "nina", "nurse")
    unknown = _error(lambda: _password_grant(service, urls, "nobody"))
    wrong = _error(lambda: _password_grant(service, urls, "nina", password="not the password"))
    assert unknown.body() == wrong.body()
    assert unknown.status == wrong.status == 400
    assert unknown.error == "invalid_grant"


def test_failures_are_committed_and_lock(service: AuthService, urls: ServerUrls) -> None:
    _user(service, "nina", "nurse")
    for _ in range(service.auth.auth_lockout_attempts):
        _error(lambda: _password_grant(service, urls, "nina", password="not the password"))
    assert _error(lambda: _password_grant(service, urls, "nina")).error == "invalid_grant"


@pytest.mark.parametrize("form,error", [
    ({}, "invalid_request"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ({"grant_type": "password", "username": "x"}, "invalid_request"),
    ({"grant_type": "client_credentials"}, "invalid_client"),
    ({"grant_type": "client_credentials", "client_assertion": "a.b.c",
      "client_assertion_type": "other"}, "invalid_request"),
    ({"grant_type": "client_credentials", "client_assertion": "garbage",
      "client_assertion_type": JWT_BEARER}, "invalid_client"),
])
def test_malformed_requests(service: AuthService, urls: ServerUrls, form: dict[str, str],
                            error: str) -> None:
    assert _error(lambda: service.token_endpoint.handle(form, urls)).error == error


def test_parse_form() -> None:
    ctype = "application/x-www-form-urlencoded"
    assert parse_form(b"grant_type=password&scope=user%2F*.rs", ctype) == \
        {"grant_type": "password", "scope": "user/*.rs"}
    assert _error(lambda: parse_form(b"a=1&a=2", ctype)).error == "invalid_request"
    assert _error(lambda: parse_form(b"{}", "application/json")).error == "invalid_request"


# --- SMART Backend Services -------------------------------------------------------------


def _register(service: AuthService, key: ClientKey, client_id: str = "analytics",
              scopes: str = "system/Observation.rs system/Patient.rs") -> None:
    with unit_of_work(service.engine) as s:
        service.clients.create(s, client_id=client_id, jwks=key.jwks_json(), scopes=scopes)


def _assertion_claims(urls: ServerUrls, clock: FakeClock, client_id: str = "analytics",
                      **overrides: Any) -> dict[str, Any]:
    now = int(clock())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": urls.token_endpoint,
                              "exp": now + 240, "iat": now, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return claims


def _client_grant(service: AuthService, urls: ServerUrls, assertion: str,
                  scope: str | None = "system/Observation.rs") -> Any:
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion}
    if scope is not None:
        form["scope"] = scope
    return service.token_endpoint.handle(form, urls)


@pytest.mark.parametrize("make_key", [rs384_key, es384_key], ids=["RS384", "ES384"])
def test_backend_services_flow(service: AuthService, urls: ServerUrls, clock: FakeClock,
                               make_key: Any) -> None:
    key = make_key()
    _register(service, key)
    response = _client_grant(service, urls, key.sign(_assertion_claims(urls, clock)),
                             "system/Observation.rs system/Encounter.rs")
    assert response.scope == "system/Observation.rs"
    claims = service.tokens.verify(response.access_token, urls)
    assert (claims.subject, claims.kind) == ("analytics", "client")
    assert claims.roles == frozenset()
    # Nothing requested: everything registered.
    everything = _client_grant(service, urls, key.sign(_assertion_claims(urls, clock)), None)
    assert everything.scope == "system/Observation.rs system/Patient.rs"


def test_backend_services_refusals(service: AuthService, urls: ServerUrls,
                                   clock: FakeClock) -> None:
    key = rs384_key()
    _register(service, key)
    impostor = rs384_key()  # same kid, different key pair
    now = int(clock())
    cases: dict[str, str] = {
        "wrong aud": key.sign(_assertion_claims(urls, clock, aud=urls.fhir_base)),
        "exp too far": key.sign(_assertion_claims(urls, clock, exp=now + 301)),
        "expired": key.sign(_assertion_claims(urls, clock, exp=now - 1)),
        "no exp": key.sign({k: v for k, v in _assertion_claims(urls, clock).items()
                            if k != "exp"}),
        "no jti": key.sign({k: v for k, v in _assertion_claims(urls, clock).items()
                            if k != "jti"}),
        "iat in the future": key.sign(_assertion_claims(urls, clock, iat=now + 120)),
        "unknown client": key.sign(_assertion_claims(urls, clock, client_id="stranger")),
        "iss differs from sub": key.sign(_assertion_claims(urls, clock, sub="someone")),
        "bad signature": impostor.sign(_assertion_claims(urls, clock)),
        "unknown kid": key.sign(_assertion_claims(urls, clock), kid="other"),
        "alg not allowed": key.sign(_assertion_claims(urls, clock), alg="RS256"),
    }
    for name, assertion in cases.items():
        err = _error(lambda a=assertion: _client_grant(service, urls, a))  # type: ignore[misc]
        assert (err.error, err.status) == ("invalid_client", 401), name


def test_exp_at_five_minutes_is_accepted(service: AuthService, urls: ServerUrls,
                                         clock: FakeClock) -> None:
    key = es384_key()
    _register(service, key)
    claims = _assertion_claims(urls, clock, exp=int(clock()) + 300)
    assert _client_grant(service, urls, key.sign(claims)).access_token


def test_reused_jti_is_refused(service: AuthService, urls: ServerUrls, clock: FakeClock) -> None:
    key = es384_key()
    _register(service, key)
    assertion = key.sign(_assertion_claims(urls, clock))
    assert _client_grant(service, urls, assertion).access_token
    err = _error(lambda: _client_grant(service, urls, assertion))
    assert err.error == "invalid_client" and "jti" in err.description
    # Another assertion with the same jti but a fresh signature is still a replay.
    jti = _assertion_claims(urls, clock)["jti"]
    assert _client_grant(service, urls, key.sign(_assertion_claims(urls, clock, jti=jti)))
    again = key.sign(_assertion_claims(urls, clock, jti=jti))
    assert _error(lambda: _client_grant(service, urls, again)).error == "invalid_client"


def test_disabled_client_and_scope_outside_registration(service: AuthService, urls: ServerUrls,
                                                        clock: FakeClock) -> None:
    key = rs384_key()
    _register(service, key)
    outside = key.sign(_assertion_claims(urls, clock))
    assert _error(lambda: _client_grant(service, urls, outside, "system/AuditEvent.rs")).error \
        == "invalid_scope"
    with unit_of_work(service.engine) as s:
        service.clients.set_active(s, "analytics", False)
    fresh = key.sign(_assertion_claims(urls, clock))
    assert _error(lambda: _client_grant(service, urls, fresh)).error == "invalid_client"


def test_key_of_the_wrong_type_for_the_alg(service: AuthService, urls: ServerUrls,
                                           clock: FakeClock) -> None:
    ec_key = es384_key(kid="k")
    _register(service, ec_key)
    rsa_key = rs384_key(kid="k")  # signs RS384 under the kid of a registered EC key
    err = _error(lambda: _client_grant(service, urls,
                                       rsa_key.sign(_assertion_claims(urls, clock))))
    assert err.error == "invalid_client"
