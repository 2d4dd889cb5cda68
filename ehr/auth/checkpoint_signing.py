"""Signing and checking audit checkpoints with the server key (JWS).

The audit package never sees the key: the composition root hands it ``signer`` and
``verifier`` functions built here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ehr.auth import jwt
from ehr.auth.keys import ServerKey

CHECKPOINT_TYP = "ehr-audit-checkpoint+jwt"


def checkpoint_signer(key: ServerKey) -> Callable[[dict[str, Any]], str]:
    def sign(payload: dict[str, Any]) -> str:
        return jwt.sign(payload, key.signer, kid=key.kid, typ=CHECKPOINT_TYP)

    return sign


def checkpoint_verifier(key: ServerKey) -> Callable[[str], dict[str, Any]]:
    """Returns the payload of a checkpoint this key signed; raises ValueError otherwise."""

    def verify(token: str) -> dict[str, Any]:
        try:
            header = jwt.unverified_header(token)
            if header.get("kid") != key.kid or header.get("typ") != CHECKPOINT_TYP:
                raise ValueError("checkpoint was not signed by this server's key")
            return jwt.verify(token, key.verifier, algorithms=[key.alg])
        except jwt.JwtError as exc:
            raise ValueError(f"checkpoint signature is invalid: {exc}") from exc

    return verify
