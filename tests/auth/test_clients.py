from __future__ import annotations

import json

import pytest

from auth.signing import es384_key
from ehr.auth.clients import parse_client_scopes, parse_jwks
from ehr.errors import BadRequest


def test_public_jwks_accepted() -> None:
    key = es384_key()
    assert parse_jwks(key.jwks_json())["keys"][0]["kid"] == key.kid


@pytest.mark.parametrize("mutate", [
    lambda k: {**k, "d": "private"},
    lambda k: {x: v for x, v in k.items() if x != "kid"},
    lambda k: {**k, "kty": "oct"},
])
def test_bad_jwks_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    key = es384_key().public_jwk()
    with pytest.raises(BadRequest):
        parse_jwks(json.dumps({"keys": [mutate(key)]}))


@pytest.mark.parametrize("text", ["not json", "[]", '{"keys": []}'])
def test_malformed_jwks(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_jwks(text)


def test_duplicate_kids() -> None:
    key = es384_key().public_jwk()
    with pytest.raises(BadRequest, match="duplicate"):
        parse_jwks(json.dumps({"keys": [key, key]}))


def test_client_scopes_must_be_system() -> None:
    assert str(parse_client_scopes("system/Patient.read system/Observation.rs")) == \
        "system/Observation.rs system/Patient.rs"
    for bad in ("user/Patient.rs", "", "openid", "system/Patient.zz"):
        with pytest.raises(BadRequest):
            parse_client_scopes(bad)
