"""JSON Web Tokens: the only module that knows python-jose, so the library can be swapped.

Verification is pinned: the caller names the algorithms it accepts and the key object is built
for exactly one algorithm, so a token cannot choose ``none`` or turn a public key into an HMAC
secret.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from jose import jwk, jws
from jose.exceptions import JOSEError
from jose.utils import base64url_decode

# Tokens travel in headers; anything longer is not ours and not worth parsing.
MAX_TOKEN_LENGTH = 16 * 1024
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})


class JwtError(Exception):
    """A token could not be parsed, or its signature did not verify."""


@dataclass(frozen=True)
class JwtKey:
    """A key bound to one algorithm (private for signing, public for verifying)."""

    alg: str
    _key: Any


def load_key(material: Mapping[str, Any] | str, alg: str) -> JwtKey:
    """Build a key from a JWK (dict) or PEM text, for exactly ``alg``."""
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise JwtError(f"algorithm {alg} is not accepted")
    data: Any = dict(material) if isinstance(material, Mapping) else material
    try:
        return JwtKey(alg, jwk.construct(data, alg))
    except (JOSEError, ValueError, TypeError, KeyError) as exc:
        raise JwtError(f"unusable {alg} key: {exc}") from exc


def sign(claims: Mapping[str, Any], key: JwtKey, *, kid: str, typ: str = "JWT") -> str:
    try:
        return str(jws.sign(dict(claims), key._key, headers={"kid": kid, "typ": typ},
                            algorithm=key.alg))
    except (JOSEError, ValueError, TypeError) as exc:
        raise JwtError(f"cannot sign: {exc}") from exc


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, untrusted: only for choosing the key to verify with."""
    _check_shape(token)
    try:
        header = jws.get_unverified_header(token)
    except (JOSEError, ValueError, TypeError) as exc:
        raise JwtError("malformed token header") from exc
    if not isinstance(header, dict):
        raise JwtError("malformed token header")
    return header


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload, untrusted: only for finding who claims to have signed it."""
    _check_shape(token)
    try:
        payload = jws.get_unverified_claims(token)
        claims = json.loads(payload)
    except (JOSEError, ValueError, TypeError) as exc:
        raise JwtError("malformed token payload") from exc
    if not isinstance(claims, dict):
        raise JwtError("token payload is not a JSON object")
    return claims


def verify(token: str, key: JwtKey, algorithms: Collection[str]) -> dict[str, Any]:
    """Check the signature with ``key`` and return the claims (not yet checked for meaning)."""
    return verify_with_header(token, key, algorithms)[1]


def verify_with_header(token: str, key: JwtKey,
                       algorithms: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Like :func:`verify`, also returning the header; the token is decoded once."""
    _check_shape(token)
    head, payload, signature = token.split(".")
    try:
        header = json.loads(base64url_decode(head.encode("ascii")))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise JwtError("malformed token header") from exc
    if not isinstance(header, dict):
        raise JwtError("malformed token header")
    alg = header.get("alg")
    if alg not in algorithms or alg != key.alg:
        raise JwtError(f"token algorithm {alg!r} is not accepted")
    try:
        # The key object was built for key.alg alone, so the header cannot change the algorithm.
        valid = key._key.verify(f"{head}.{payload}".encode("ascii"),
                                base64url_decode(signature.encode("ascii")))
    except (JOSEError, ValueError, TypeError, UnicodeError):
        valid = False
    if not valid:
        raise JwtError("token signature does not verify")
    try:
        claims = json.loads(base64url_decode(payload.encode("ascii")))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise JwtError("malformed token payload") from exc
    if not isinstance(claims, dict):
        raise JwtError("token payload is not a JSON object")
    return header, claims


def _check_shape(token: str) -> None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise JwtError("not a compact JWS")
