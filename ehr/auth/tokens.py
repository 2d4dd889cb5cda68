"""Access tokens: signed JWTs (RFC 9068 ``at+jwt``) issued by this server, and their checks.

Verification trusts nothing in the token before its signature is checked with the one server
key, and refuses: another algorithm (``none``, HS256 keyed with the public key...), a ``kid``
other than the server's, another ``typ`` (a signing assertion is not an access token), a wrong
``iss`` or ``aud``, an expired token or missing claims.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ehr.auth import jwt
from ehr.auth.clock import Clock, system_clock
from ehr.auth.keys import ServerKey
from ehr.auth.scopes import InvalidScope, ScopeSet

ACCESS_TOKEN_TYP = "at+jwt"
# Tolerated difference between workers' clocks for `iat`.
_SKEW_SECONDS = 30


class InvalidToken(Exception):
    """The token is not one this server issued for this audience, or it expired."""


@dataclass(frozen=True)
class ServerUrls:
    """Where things live, derived from the FHIR base URL (configured or from the request)."""

    fhir_base: str

    @classmethod
    def for_fhir_base(cls, fhir_base: str) -> ServerUrls:
        return cls(fhir_base.rstrip("/"))

    @property
    def root(self) -> str:
        if self.fhir_base.endswith("/fhir"):
            return self.fhir_base[: -len("/fhir")]
        parts = urlsplit(self.fhir_base)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def issuer(self) -> str:
        return f"{self.root}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.root}/auth/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.root}/auth/jwks"

    @property
    def reauth_endpoint(self) -> str:
        return f"{self.root}/auth/reauth"


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    kind: str  # "user" | "client"
    scopes: ScopeSet
    roles: frozenset[str]
    display: str
    practitioner: str | None
    jti: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    jti: str


class TokenService:
    def __init__(self, key: ServerKey, *, ttl_seconds: int = 15 * 60,
                 clock: Clock = system_clock, cache_size: int = 4096) -> None:
        self.key = key
        self.ttl = ttl_seconds
        self.clock = clock
        self.cache_size = cache_size
        self._verified: dict[tuple[str, str], AccessClaims] = {}

    def issue(self, urls: ServerUrls, *, subject: str, kind: str, scopes: ScopeSet,
              roles: frozenset[str] = frozenset(), display: str = "",
              practitioner: str | None = None) -> IssuedToken:
        now = int(self.clock())
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": urls.issuer, "aud": urls.fhir_base, "sub": subject,
            "iat": now, "exp": now + self.ttl, "jti": jti,
            "scope": str(scopes), "kind": kind,
        }
        if kind == "client":
            claims["client_id"] = subject
        if roles:
            claims["roles"] = sorted(roles)
        if display:
            claims["name"] = display
        if practitioner:
            claims["fhirUser"] = practitioner
        token = jwt.sign(claims, self.key.signer, kid=self.key.kid, typ=ACCESS_TOKEN_TYP)
        return IssuedToken(token, self.ttl, str(scopes), jti)

    def verify(self, token: str, urls: ServerUrls) -> AccessClaims:
        cache_key = (token, urls.fhir_base)
        cached = self._verified.get(cache_key)
        if cached is not None:
            if cached.expires_at <= self.clock():
                raise InvalidToken("token expired")
            return cached
        try:
            header, claims = jwt.verify_with_header(token, self.key.verifier, [self.key.alg])
        except jwt.JwtError as exc:
            raise InvalidToken(str(exc)) from exc
        if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
            raise InvalidToken("not an access token")
        if header.get("kid") != self.key.kid:
            raise InvalidToken("unknown signing key")
        result = self._check(claims, urls)
        self._remember(cache_key, result)
        return result

    def _remember(self, cache_key: tuple[str, str], claims: AccessClaims) -> None:
        # Only exact token strings already verified are remembered, with their expiry checked
        # on every hit: a client reuses its token for minutes, so the signature check (the bulk
        # of the per-request cost) runs once per token instead of once per request.
        if self.cache_size <= 0:
            return
        if len(self._verified) >= self.cache_size:
            try:
                self._verified.pop(next(iter(self._verified)))
            except (StopIteration, KeyError, RuntimeError):
                self._verified.clear()
        self._verified[cache_key] = claims

    def _check(self, claims: dict[str, Any], urls: ServerUrls) -> AccessClaims:
        now = self.clock()
        if claims.get("iss") != urls.issuer:
            raise InvalidToken("token issued by another server")
        aud = claims.get("aud")
        if aud != urls.fhir_base and not (isinstance(aud, list) and urls.fhir_base in aud):
            raise InvalidToken("token issued for another audience")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise InvalidToken("token lacks exp or iat")
        if exp <= now:
            raise InvalidToken("token expired")
        if iat > now + _SKEW_SECONDS:
            raise InvalidToken("token issued in the future")
        sub, kind, jti = claims.get("sub"), claims.get("kind"), claims.get("jti")
        scope, roles = claims.get("scope", ""), claims.get("roles", [])
        if not isinstance(sub, str) or not sub or kind not in ("user", "client") or \
                not isinstance(jti, str) or not isinstance(scope, str) or \
                not isinstance(roles, list):
            raise InvalidToken("token claims are incomplete")
        try:
            scopes = ScopeSet.parse(scope)
        except InvalidScope as exc:
            raise InvalidToken("token scope is malformed") from exc
        practitioner = claims.get("fhirUser")
        return AccessClaims(
            subject=sub, kind=kind, scopes=scopes, roles=frozenset(str(r) for r in roles),
            display=str(claims.get("name", "")),
            practitioner=practitioner if isinstance(practitioner, str) else None,
            jti=jti, issued_at=iat, expires_at=exp)
