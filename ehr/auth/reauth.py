"""Re-authentication for signatures: the password again yields a short-lived, single-use
signing assertion that a later action (signing a note, witnessing waste, an eligibility
decision) presents and consumes.

The assertion is a JWT signed with the server key but with its own ``typ`` and audience, so it
is never accepted as an access token and an access token is never accepted in its place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session

from ehr.auth import jwt
from ehr.auth.clock import Clock, system_clock
from ehr.auth.keys import ServerKey
from ehr.auth.replay import consume_jti
from ehr.auth.settings import AuthSettings
from ehr.auth.users import LOGIN_FAILED, Users
from ehr.errors import BadRequest, Forbidden

ASSERTION_TYP = "reauth+jwt"
ASSERTION_AUDIENCE = "urn:ehr:signing-assertion"
PURPOSE = "reauth"
_SKEW_SECONDS = 30


class InvalidSigningAssertion(Forbidden):
    """The assertion is forged, expired, already used or someone else's."""


@dataclass(frozen=True)
class SigningAssertion:
    """Proof that ``username`` typed their password at ``authenticated_at``."""

    username: str
    display_name: str
    action: str
    jti: str
    authenticated_at: int
    expires_at: int


@dataclass(frozen=True)
class IssuedAssertion:
    assertion: str
    expires_in: int


class SigningAssertions:
    def __init__(self, key: ServerKey, users: Users, *, auth: AuthSettings | None = None,
                 clock: Clock = system_clock) -> None:
        self.key = key
        self.users = users
        self.auth = auth or AuthSettings()
        self.clock = clock

    def issue(self, session: Session, username: str, password: str,
              action: str) -> IssuedAssertion | None:
        """Check the password (a failure counts toward lockout); None when refused.

        Returns rather than raises on refusal so the caller commits the failure count first.
        """
        result = self.users.authenticate(session, username, password)
        if result.user is None:
            return None
        now = int(self.clock())
        ttl = self.auth.auth_reauth_ttl_seconds
        claims = {"iss": ASSERTION_AUDIENCE, "aud": ASSERTION_AUDIENCE, "purpose": PURPOSE,
                  "sub": result.user.username, "name": result.user.display_name,
                  "act": action[:64], "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        token = jwt.sign(claims, self.key.signer, kid=self.key.kid, typ=ASSERTION_TYP)
        return IssuedAssertion(token, ttl)

    def verify(self, session: Session, token: str, expected_user: str,
               action: str) -> SigningAssertion:
        """Check and consume an assertion of ``expected_user`` (single use: the jti is kept)."""
        assertion = self.peek(token, expected_user, action)
        if not consume_jti(session, kind="reauth", jti=assertion.jti, issuer=assertion.username,
                           expires_at=assertion.expires_at, now=self.clock()):
            raise InvalidSigningAssertion("signing assertion already used; re-authenticate")
        return assertion

    def peek(self, token: str, expected_user: str, action: str) -> SigningAssertion:
        """Check an assertion without consuming it."""
        try:
            header = jwt.unverified_header(token)
            if header.get("typ") != ASSERTION_TYP or header.get("kid") != self.key.kid:
                raise InvalidSigningAssertion("not a signing assertion of this server")
            claims = jwt.verify(token, self.key.verifier, [self.key.alg])
        except jwt.JwtError as exc:
            raise InvalidSigningAssertion("signing assertion does not verify") from exc
        now = self.clock()
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if claims.get("purpose") != PURPOSE or claims.get("aud") != ASSERTION_AUDIENCE or \
                not isinstance(exp, int) or not isinstance(iat, int) or \
                not isinstance(jti, str):
            raise InvalidSigningAssertion("not a signing assertion")
        if exp <= now:
            raise InvalidSigningAssertion("signing assertion expired; re-authenticate")
        if iat > now + _SKEW_SECONDS:
            raise InvalidSigningAssertion("signing assertion issued in the future")
        if claims.get("sub") != expected_user.strip().lower():
            raise InvalidSigningAssertion("signing assertion belongs to another user")
        act = str(claims.get("act", ""))
        if act != action:
            raise InvalidSigningAssertion(
                f"signing assertion was made for {act!r}" if act else
                "signing assertion names no action")
        return SigningAssertion(str(claims["sub"]), str(claims.get("name", "")), act, jti,
                                iat, exp)


def refused() -> Forbidden:
    """The error a failed re-authentication gives: the same words as a failed login."""
    return Forbidden(LOGIN_FAILED)


def require_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise BadRequest("password is required")
    return password
