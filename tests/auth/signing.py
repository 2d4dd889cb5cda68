"""Test helpers: a clock tests move, and client key pairs that sign JWS with cryptography only
(independently of the code under test)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ehr.auth.keys import public_jwk_of

FHIR_BASE = "http://testserver/fhir"
STRONG_PASSWORD = "correct horse battery staple"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(header: dict[str, Any], claims: dict[str, Any] | bytes) -> str:
    """``header.payload`` without the signature (the JWS signing input)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    return f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"


@dataclass
class ClientKey:
    """A client's real key pair, signing JWS with cryptography only (not the code under test)."""

    alg: str
    kid: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        return {**public_jwk_of(self.private.public_key()), "kid": self.kid, "alg": self.alg}

    def jwks_json(self) -> str:
        return json.dumps({"keys": [self.public_jwk()]})

    def sign(self, claims: dict[str, Any], *, kid: str | None = None,
             alg: str | None = None) -> str:
        header = {"alg": alg or self.alg, "kid": kid or self.kid, "typ": "JWT"}
        signing_input = compact(header, claims)
        data = signing_input.encode("ascii")
        if self.alg == "RS384":
            sig = self.private.sign(data, padding.PKCS1v15(), hashes.SHA384())
        else:
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA384())))
            sig = r.to_bytes(48, "big") + s.to_bytes(48, "big")
        return f"{signing_input}.{b64url(sig)}"


def rs384_key(kid: str = "rsa-1") -> ClientKey:
    return ClientKey("RS384", kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def es384_key(kid: str = "ec-1") -> ClientKey:
    return ClientKey("ES384", kid, ec.generate_private_key(ec.SECP384R1()))
