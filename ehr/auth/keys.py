"""The server's signing key: loaded from settings or generated under ``var/`` at first start.

The key type decides the algorithm (EC P-256 -> ES256, RSA -> RS256). A generated key is RSA 2048
(RS256): tokens are signed once but verified on every request, and RSA verification is several
times cheaper than ECDSA verification. Its ``kid`` is the RFC 7638
thumbprint of the public key, so it is stable across restarts and identical on every worker.
The parsed key objects are built once and cached here: verification is then pure CPU.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ehr.auth import jwt
from ehr.auth.settings import AuthSettings
from ehr.config import Settings
from ehr.errors import EhrError

KEY_FILE_NAME = "signing-key.pem"


class SigningKeyError(EhrError):
    """The configured signing key is missing or unusable (a deployment problem)."""

    status = 500
    default_code = "exception"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, size: int | None = None) -> bytes:
    length = size or max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def public_jwk_of(public_key: Any) -> dict[str, str]:
    """The public JWK members of an EC or RSA key (without kid/alg/use)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        size = (public_key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[
            public_key.curve.name]
        return {"kty": "EC", "crv": crv, "x": b64url(_int_bytes(numbers.x, size)),
                "y": b64url(_int_bytes(numbers.y, size))}
    if isinstance(public_key, rsa.RSAPublicKey):
        rnumbers = public_key.public_numbers()
        return {"kty": "RSA", "n": b64url(_int_bytes(rnumbers.n)),
                "e": b64url(_int_bytes(rnumbers.e))}
    raise SigningKeyError("signing key must be an EC or RSA key")


def thumbprint(jwk_members: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members only."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                "OKP": ("crv", "kty", "x")}
    names = required.get(str(jwk_members.get("kty")))
    if names is None or any(n not in jwk_members for n in names):
        raise ValueError("JWK lacks the members its thumbprint needs")
    canonical = json.dumps({n: jwk_members[n] for n in names}, separators=(",", ":"),
                           sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class ServerKey:
    """The signing key with its algorithm, kid and cached jose key objects."""

    alg: str
    kid: str
    public_jwk: dict[str, str]
    signer: jwt.JwtKey = field(repr=False)
    verifier: jwt.JwtKey = field(repr=False)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.public_jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}]}


@lru_cache(maxsize=8)
def server_key_from_pem(pem: bytes) -> ServerKey:
    """Parse (and check) a PEM key once per process: RSA key loading costs ~60 ms."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key is not an unencrypted PEM private key: {exc}") from exc
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if private.curve.name != "secp256r1":
            raise SigningKeyError("EC signing keys must use curve P-256 (ES256)")
        alg = "ES256"
    elif isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise SigningKeyError("RSA signing keys must have at least 2048 bits")
        alg = "RS256"
    else:
        raise SigningKeyError("signing key must be an EC P-256 or RSA key")
    public = private.public_key()
    members = public_jwk_of(public)
    public_pem = public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        signer = jwt.load_key(pem.decode("ascii"), alg)
        verifier = jwt.load_key(public_pem.decode("ascii"), alg)
    except jwt.JwtError as exc:
        raise SigningKeyError(str(exc)) from exc
    return ServerKey(alg=alg, kid=thumbprint(members), public_jwk=members, signer=signer,
                     verifier=verifier)


def generate_pem(alg: str = "RS256") -> bytes:
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise SigningKeyError(f"cannot generate a key for {alg}")
    return private.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def load_or_create_server_key(settings: Settings, auth: AuthSettings | None = None) -> ServerKey:
    """The configured key file, else ``var_dir/auth/signing-key.pem`` (created when absent)."""
    auth = auth or AuthSettings()
    if auth.auth_signing_key_file is not None:
        path = Path(auth.auth_signing_key_file)
        if not path.is_file():
            raise SigningKeyError(f"EHR_AUTH_SIGNING_KEY_FILE {path} does not exist")
        return server_key_from_pem(path.read_bytes())
    path = Path(settings.var_dir) / "auth" / KEY_FILE_NAME
    if not path.is_file():
        _create_key_file(path)
    return server_key_from_pem(path.read_bytes())


def _create_key_file(path: Path) -> None:
    """Write a new key without ever exposing a half-written file to a concurrent worker.

    The key is written to a private temporary file and hard-linked into place: the link fails if
    another process won the race, and then its key is the one everybody uses.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(generate_pem())
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
