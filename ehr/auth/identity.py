"""From an ``Authorization: Bearer`` header to the ``Actor`` the rest of the code works with."""

from __future__ import annotations

from functools import lru_cache

from ehr.auth.tokens import AccessClaims, InvalidToken, ServerUrls, TokenService
from ehr.context import Actor
from ehr.errors import Unauthorized

REALM = "ehr"


def challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    """The RFC 6750 ``WWW-Authenticate`` header (no error code when no credentials came)."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return {"WWW-Authenticate": value}


@lru_cache(maxsize=4096)
def actor_of(claims: AccessClaims) -> Actor:
    # Keyed by the verified claims (the token service hands back the same claims object while
    # the token lives): the same Actor every request, so what is derived from it downstream
    # (parsed scopes, statement cache keys) is looked up, not rebuilt. An expired token never
    # gets here: expiry is checked on every verification.
    return Actor(id=claims.subject, kind=claims.kind, display=claims.display or claims.subject,
                 roles=claims.roles, scopes=claims.scopes.strings(),
                 practitioner=claims.practitioner)


def bearer_token(authorization: str | None) -> str:
    """The token of a Bearer header; Unauthorized when missing or of another scheme."""
    if not authorization:
        raise Unauthorized("authentication required: send an OAuth2 Bearer token",
                           headers=challenge())
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'",
                           headers=challenge("invalid_request", "Bearer token expected"))
    return token


def invalid_token() -> Unauthorized:
    """The one 401 for every unusable token: the precise reason helps an attacker more than a
    client, so it goes only in the exception's cause, for the server's logs."""
    return Unauthorized("the access token is invalid or expired",
                        headers=challenge("invalid_token", "invalid or expired token"))


def actor_from_bearer(authorization: str | None, tokens: TokenService,
                      urls: ServerUrls) -> Actor:
    """Verify the bearer token; any problem is a 401 that does not say what was wrong."""
    token = bearer_token(authorization)
    try:
        claims = tokens.verify(token, urls)
    except InvalidToken as exc:
        raise invalid_token() from exc
    return actor_of(claims)
