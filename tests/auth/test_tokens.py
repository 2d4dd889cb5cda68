from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth.signing import FakeClock, b64url, compact
from ehr.auth import jwt
from ehr.auth.keys import ServerKey, server_key_from_pem
from ehr.auth.scopes import ScopeSet
from ehr.auth.tokens import InvalidToken, ServerUrls, TokenService


@pytest.fixture
def tokens(server_key: ServerKey, clock: FakeClock) -> TokenService:
    return TokenService(server_key, ttl_seconds=900, clock=clock)


def _issue(tokens: TokenService, urls: ServerUrls) -> str:
    return tokens.issue(urls, subject="alice", kind="user",
                        scopes=ScopeSet.parse("user/*.rs user/Observation.cu"),
                        roles=frozenset({"nurse"}), display="Alice Jones",
                        practitioner="Practitioner/7").access_token


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def test_round_trip(tokens: TokenService, urls: ServerUrls, server_key: ServerKey) -> None:
    token = _issue(tokens, urls)
    header, payload = _parts(token)
    assert header == {"alg": server_key.alg, "kid": server_key.kid, "typ": "at+jwt"}
    assert payload["iss"] == urls.issuer and payload["aud"] == urls.fhir_base
    assert payload["exp"] - payload["iat"] == 900
    claims = tokens.verify(token, urls)
    assert claims.subject == "alice" and claims.kind == "user"
    assert claims.roles == {"nurse"}
    assert str(claims.scopes) == "user/*.rs user/Observation.cu"
    assert claims.practitioner == "Practitioner/7"
    assert claims.display == "Alice Jones"


def _sign_with_server(server_key: ServerKey, header: dict[str, Any],
                      claims: dict[str, Any]) -> str:
    """A correctly signed token with an arbitrary header (kid/typ) or claims."""
    forged_header = {"alg": server_key.alg, **header}
    token = jwt.sign(claims, server_key.signer, kid=forged_header.get("kid", ""),
                     typ=forged_header.get("typ", "at+jwt"))
    return token


def _hs256_with_public_key(server_key: ServerKey, claims: dict[str, Any]) -> str:
    secret = json.dumps(server_key.public_jwk).encode()
    header = {"alg": "HS256", "kid": server_key.kid, "typ": "at+jwt"}
    signing_input = compact(header, claims)
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def _hs256_with_public_pem(server_key: ServerKey, claims: dict[str, Any]) -> str:
    pem = server_key.verifier._key.to_pem()  # the published public key as bytes
    header = {"alg": "HS256", "kid": server_key.kid, "typ": "at+jwt"}
    signing_input = compact(header, claims)
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def _other_key() -> ServerKey:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    return server_key_from_pem(pem)


Forgery = Callable[[TokenService, ServerUrls, ServerKey, dict[str, Any], FakeClock], str]

FORGERIES: dict[str, Forgery] = {
    "alg none": lambda t, u, k, c, _: compact({"alg": "none", "kid": k.kid, "typ": "at+jwt"},
                                              c) + ".",
    "HS256 keyed with the public JWK": lambda t, u, k, c, _: _hs256_with_public_key(k, c),
    "HS256 keyed with the public PEM": lambda t, u, k, c, _: _hs256_with_public_pem(k, c),
    "another key claiming our kid": lambda t, u, k, c, _: jwt.sign(
        c, _other_key().signer, kid=k.kid, typ="at+jwt"),
    "unknown kid": lambda t, u, k, c, _: _sign_with_server(k, {"kid": "someone-else"}, c),
    "wrong kid of another key": lambda t, u, k, c, _: (lambda o: jwt.sign(
        c, o.signer, kid=o.kid, typ="at+jwt"))(_other_key()),
    "missing typ (not an access token)": lambda t, u, k, c, _: _sign_with_server(
        k, {"kid": k.kid, "typ": "JWT"}, c),
    "wrong aud": lambda t, u, k, c, _: _sign_with_server(
        k, {"kid": k.kid}, {**c, "aud": "http://elsewhere/fhir"}),
    "wrong iss": lambda t, u, k, c, _: _sign_with_server(
        k, {"kid": k.kid}, {**c, "iss": "http://evil/auth"}),
    "expired": lambda t, u, k, c, clock: _sign_with_server(
        k, {"kid": k.kid}, {**c, "exp": int(clock()) - 1}),
    "issued in the future": lambda t, u, k, c, clock: _sign_with_server(
        k, {"kid": k.kid}, {**c, "iat": int(clock()) + 3600, "exp": int(clock()) + 4000}),
    "missing sub": lambda t, u, k, c, _: _sign_with_server(
        k, {"kid": k.kid}, {x: v for x, v in c.items() if x != "sub"}),
    "tampered payload": lambda t, u, k, c, _: (lambda tok: ".".join(
        [tok.split(".")[0], b64url(json.dumps({**c, "scope": "user/*.cruds"}).encode()),
         tok.split(".")[2]]))(_sign_with_server(k, {"kid": k.kid}, c)),
    "garbage": lambda *_: "not.a.token",
    "empty": lambda *_: "",
    "two parts": lambda *_: "abc.def",
    "huge": lambda *_: "a." + "b" * 20000 + ".c",
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_tokens_are_refused(name: str, tokens: TokenService, urls: ServerUrls,
                                   server_key: ServerKey, clock: FakeClock) -> None:
    good = _parts(_issue(tokens, urls))[1]
    forged = FORGERIES[name](tokens, urls, server_key, good, clock)
    with pytest.raises(InvalidToken):
        tokens.verify(forged, urls)


def test_the_unforged_baseline_passes(tokens: TokenService, urls: ServerUrls,
                                      server_key: ServerKey, clock: FakeClock) -> None:
    # Guards the forgery table: the same construction with nothing changed is accepted.
    good = _parts(_issue(tokens, urls))[1]
    assert tokens.verify(_sign_with_server(server_key, {"kid": server_key.kid}, good), urls)


def test_expiry_follows_the_clock(tokens: TokenService, urls: ServerUrls,
                                  clock: FakeClock) -> None:
    token = _issue(tokens, urls)
    clock.advance(899)
    assert tokens.verify(token, urls).subject == "alice"
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, urls)


def test_other_fhir_base_is_another_audience(tokens: TokenService, urls: ServerUrls) -> None:
    token = _issue(tokens, urls)
    with pytest.raises(InvalidToken):
        tokens.verify(token, ServerUrls.for_fhir_base("http://other:8000/fhir"))


@pytest.mark.parametrize("cache_size", [0, 4096], ids=["signature checked", "cached"])
def test_verification_cost(server_key: ServerKey, clock: FakeClock, urls: ServerUrls,
                           cache_size: int,
                           record_property: Callable[[str, object], None]) -> None:
    """Per-request cost of verifying a token with the parsed key cached (reported)."""
    tokens = TokenService(server_key, clock=clock, cache_size=cache_size)
    token = _issue(tokens, urls)
    rounds = 300
    for _ in range(20):
        tokens.verify(token, urls)
    start = time.perf_counter()
    for _ in range(rounds):
        tokens.verify(token, urls)
    per_call_us = (time.perf_counter() - start) / rounds * 1e6
    record_property("token_verify_us", round(per_call_us, 1))
    print(f"\ntoken verification ({server_key.alg}, cache {cache_size}): "
          f"{per_call_us:.1f} us per call")
    assert per_call_us < 5000


def test_cached_token_still_expires(server_key: ServerKey, clock: FakeClock,
                                    urls: ServerUrls) -> None:
    tokens = TokenService(server_key, ttl_seconds=60, clock=clock)
    token = _issue(tokens, urls)
    assert tokens.verify(token, urls).subject == "alice"
    assert tokens.verify(token, urls).subject == "alice"  # from the cache
    clock.advance(60)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, urls)


def test_cache_is_bounded(server_key: ServerKey, clock: FakeClock, urls: ServerUrls) -> None:
    tokens = TokenService(server_key, clock=clock, cache_size=3)
    for _ in range(10):
        tokens.verify(_issue(tokens, urls), urls)
    assert len(tokens._verified) <= 3
