from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ehr.auth.keys import (
    SigningKeyError,
    generate_pem,
    load_or_create_server_key,
    server_key_from_pem,
    thumbprint,
)
from ehr.auth.settings import AuthSettings
from ehr.config import Settings


def test_rfc7638_example_thumbprint() -> None:
    # The worked example of RFC 7638 section 3.1.
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
                "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ"
                "5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS"
                "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-k"
                "EgU8awapJzKnqDKgw"}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_generated_key_is_created_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EHR_AUTH_SIGNING_KEY_FILE", raising=False)
    settings = Settings(var_dir=tmp_path / "var")
    first = load_or_create_server_key(settings, AuthSettings())
    path = tmp_path / "var" / "auth" / "signing-key.pem"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_server_key(settings, AuthSettings())
    assert first.kid == second.kid
    assert first.alg == "RS256"
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"]


def test_kid_is_the_thumbprint_of_the_published_key(tmp_path: Path) -> None:
    key = server_key_from_pem(generate_pem("ES256"))
    published = key.jwks()["keys"][0]
    required = {k: published[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(required, separators=(",", ":"),
                                       sort_keys=True).encode()).digest()
    assert published["kid"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert published["alg"] == "ES256" and published["use"] == "sig"
    assert "d" not in published


def test_configured_key_file(tmp_path: Path) -> None:
    pem = generate_pem("ES256")
    path = tmp_path / "mine.pem"
    path.write_bytes(pem)
    key = load_or_create_server_key(Settings(var_dir=tmp_path / "var"),
                                    AuthSettings(auth_signing_key_file=path))
    assert key.alg == "ES256"
    assert not (tmp_path / "var").exists()
    with pytest.raises(SigningKeyError):
        load_or_create_server_key(Settings(var_dir=tmp_path),
                                  AuthSettings(auth_signing_key_file=tmp_path / "absent.pem"))


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
])
def test_unsuitable_keys_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    pem = make().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    with pytest.raises(SigningKeyError):
        server_key_from_pem(pem)
    with pytest.raises(SigningKeyError):
        server_key_from_pem(b"not a key")
