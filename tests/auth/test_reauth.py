from __future__ import annotations

import pytest

from auth.signing import STRONG_PASSWORD, FakeClock
from ehr.auth.reauth import InvalidSigningAssertion
from ehr.auth.scopes import ScopeSet
from ehr.auth.service import AuthService
from ehr.auth.tokens import InvalidToken, ServerUrls
from ehr.db import unit_of_work


@pytest.fixture
def doctor(service: AuthService) -> str:
    with unit_of_work(service.engine) as s:
        service.users.create(s, username="dana", password=STRONG_PASSWORD,
                             roles=["physician"], display_name="Dr Dana Wu")
        service.users.create(s, username="eli", password=STRONG_PASSWORD, roles=["nurse"])
    return "dana"


def _issue(service: AuthService, username: str, password: str = STRONG_PASSWORD,
           action: str = "note-signing") -> str | None:
    with unit_of_work(service.engine) as s:
        issued = service.assertions.issue(s, username, password, action)
    return issued.assertion if issued else None


def test_issue_and_consume_once(service: AuthService, doctor: str) -> None:
    token = _issue(service, doctor, action="note-signing")
    assert token is not None
    with unit_of_work(service.engine) as s:
        assertion = service.assertions.verify(s, token, doctor, "note-signing")
    assert assertion.username == "dana"
    assert assertion.display_name == "Dr Dana Wu"
    assert assertion.expires_at - assertion.authenticated_at == \
        service.auth.auth_reauth_ttl_seconds
    with pytest.raises(InvalidSigningAssertion, match="already used"), \
            unit_of_work(service.engine) as s:
        service.assertions.verify(s, token, doctor, "note-signing")


def test_refusals(service: AuthService, doctor: str, clock: FakeClock,
                  urls: ServerUrls) -> None:
    assert _issue(service, doctor, "wrong password here") is None
    token = _issue(service, doctor, action="waste-witness")
    assert token is not None
    with unit_of_work(service.engine) as s:
        with pytest.raises(InvalidSigningAssertion, match="another user"):
            service.assertions.verify(s, token, "eli", "waste-witness")
        with pytest.raises(InvalidSigningAssertion, match="made for"):
            service.assertions.verify(s, token, doctor, "note-signing")
        with pytest.raises(InvalidSigningAssertion):
            service.assertions.verify(s, token[:-4] + "AAAA", doctor, "waste-witness")
    # An access token is not a signing assertion, and the reverse.
    access = service.tokens.issue(urls, subject=doctor, kind="user",
                                  scopes=ScopeSet.parse("user/*.rs")).access_token
    with pytest.raises(InvalidSigningAssertion), unit_of_work(service.engine) as s:
        service.assertions.verify(s, access, doctor, "waste-witness")
    with pytest.raises(InvalidToken):
        service.tokens.verify(token, urls)
    clock.advance(service.auth.auth_reauth_ttl_seconds)
    with pytest.raises(InvalidSigningAssertion, match="expired"), \
            unit_of_work(service.engine) as s:
        service.assertions.verify(s, token, doctor, "waste-witness")


def test_reauth_failures_count_toward_lockout(service: AuthService, doctor: str) -> None:
    for _ in range(service.auth.auth_lockout_attempts):
        assert _issue(service, doctor, "wrong password here") is None
    assert _issue(service, doctor) is None
