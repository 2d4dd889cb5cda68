from __future__ import annotations

import pytest

from auth.signing import FakeClock
from ehr.auth.identity import actor_from_bearer, bearer_token
from ehr.auth.keys import ServerKey
from ehr.auth.scopes import ScopeSet
from ehr.auth.tokens import ServerUrls, TokenService
from ehr.errors import Unauthorized


@pytest.fixture
def tokens(server_key: ServerKey, clock: FakeClock) -> TokenService:
    return TokenService(server_key, clock=clock)


def test_actor_of_a_user_token(tokens: TokenService, urls: ServerUrls) -> None:
    token = tokens.issue(urls, subject="nina", kind="user", scopes=ScopeSet.parse("user/*.rs"),
                         roles=frozenset({"nurse"}), display="Nina N",
                         practitioner="Practitioner/n").access_token
    actor = actor_from_bearer(f"Bearer {token}", tokens, urls)
    assert (actor.id, actor.kind, actor.display) == ("nina", "user", "Nina N")
    assert actor.roles == {"nurse"} and actor.scopes == {"user/*.rs"}
    assert actor.practitioner == "Practitioner/n"
    assert actor_from_bearer(f"bearer  {token} ", tokens, urls) == actor


def test_actor_of_a_client_token(tokens: TokenService, urls: ServerUrls) -> None:
    token = tokens.issue(urls, subject="lab", kind="client",
                         scopes=ScopeSet.parse("system/Observation.rs")).access_token
    actor = actor_from_bearer(f"Bearer {token}", tokens, urls)
    assert (actor.kind, actor.roles, actor.practitioner) == ("client", frozenset(), None)


def test_missing_header_has_a_bare_challenge() -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(None)
    assert info.value.headers == {"WWW-Authenticate": 'Bearer realm="ehr"'}
    assert info.value.status == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token x"])
def test_wrong_scheme(header: str) -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert "invalid_request" in info.value.headers["WWW-Authenticate"]


def test_bad_token_says_invalid_token_only(tokens: TokenService, urls: ServerUrls,
                                           clock: FakeClock) -> None:
    token = tokens.issue(urls, subject="nina", kind="user", scopes=ScopeSet()).access_token
    clock.advance(tokens.ttl)
    with pytest.raises(Unauthorized) as info:
        actor_from_bearer(f"Bearer {token}", tokens, urls)
    assert 'error="invalid_token"' in info.value.headers["WWW-Authenticate"]
    assert info.value.outcome()["issue"][0]["code"] == "login"
