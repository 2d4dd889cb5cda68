"""The OAuth2 token endpoint, framework-free: form fields in, token response or OAuthError out.

Grants: ``password`` for users and scripts, ``client_credentials`` with a ``private_key_jwt``
client assertion (SMART Backend Services) for systems. The granted scope is what was asked for,
cut down to the role ceiling (users) or the registered scopes (clients); asking for nothing
grants the whole ceiling, and a request of which nothing remains is ``invalid_scope``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine
from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.auth import jwt
from ehr.auth.clients import CLIENT_ALGORITHMS, Client, Clients
from ehr.auth.clock import Clock, system_clock
from ehr.auth.replay import consume_jti
from ehr.auth.roles import role_ceiling
from ehr.auth.scopes import InvalidScope, ScopeSet
from ehr.auth.settings import AuthSettings
from ehr.auth.tokens import IssuedToken, ServerUrls, TokenService
from ehr.auth.users import LOGIN_FAILED, EventRecorder, User, Users
from ehr.context import Actor, RequestContext
from ehr.db import unit_of_work

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_TYPES = ("password", "client_credentials")
MAX_FORM_BYTES = 64 * 1024
# Who asks for a token before being anyone; the attempted name goes into the audit detail.
ANONYMOUS = Actor(id="anonymous", kind="anonymous", display="anonymous")
# Refusals that are a denial of credentials rather than a malformed request.
_DENIALS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error response."""

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status or (401 if error == "invalid_client" else 400)
        self.recorded = False  # already in the audit trail (with the failure count)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; a repeated parameter is invalid."""
    if (content_type or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request",
                         "the token request must be application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "request too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "malformed form body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"parameter {name!r} given more than once")
        form[name] = value
    return form


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"

    @classmethod
    def of(cls, issued: IssuedToken) -> TokenResponse:
        return cls(issued.access_token, issued.expires_in, issued.scope)

    def body(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "token_type": self.token_type,
                "expires_in": self.expires_in, "scope": self.scope}


def grant(requested: str | None, ceiling: ScopeSet) -> ScopeSet:
    """Requested ∩ allowed; nothing requested -> everything allowed; nothing left -> error."""
    try:
        wanted = ScopeSet.parse(requested or "")
    except InvalidScope as exc:
        raise OAuthError("invalid_scope", exc.diagnostics) from exc
    if not wanted:
        return ceiling
    granted = wanted.intersect(ceiling)
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes can be granted")
    return granted


class TokenEndpoint:
    """Every token issued or refused is audited (category ``security``) when a recorder is
    given: an issued token commits with its record, so no token leaves unaudited."""

    def __init__(self, engine: Engine, tokens: TokenService, *, users: Users | None = None,
                 clients: Clients | None = None, auth: AuthSettings | None = None,
                 clock: Clock = system_clock, recorder: EventRecorder | None = None) -> None:
        self.engine = engine
        self.tokens = tokens
        self.auth = auth or AuthSettings()
        self.clock = clock
        self.users = users or Users(self.auth, clock=clock, recorder=recorder)
        self.clients = clients or Clients(clock)
        self.recorder = recorder

    def handle(self, form: Mapping[str, str], urls: ServerUrls,
               ctx: RequestContext | None = None) -> TokenResponse:
        ctx = ctx or RequestContext(actor=ANONYMOUS)
        try:
            return self._dispatch(form, urls, ctx)
        except OAuthError as err:
            self.record_refusal(ctx, form, err)
            raise

    def record_refusal(self, ctx: RequestContext, form: Mapping[str, str],
                       err: OAuthError) -> None:
        """Audit a refusal not yet recorded, in a transaction of its own: the request failed."""
        if err.recorded or self.recorder is None:
            return
        with unit_of_work(self.engine) as session:
            self._refused(session, ctx, form, err)

    def _dispatch(self, form: Mapping[str, str], urls: ServerUrls,
                  ctx: RequestContext) -> TokenResponse:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type == "password":
            return self._password(form, urls, ctx)
        if grant_type == "client_credentials":
            return self._client_credentials(form, urls, ctx)
        raise OAuthError("unsupported_grant_type",
                         f"supported grant types: {', '.join(GRANT_TYPES)}")

    def _password(self, form: Mapping[str, str], urls: ServerUrls,
                  ctx: RequestContext) -> TokenResponse:
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError("invalid_request", "username and password are required")
        refusal: OAuthError | None = None
        with unit_of_work(self.engine) as session:
            result = self.users.authenticate(session, username, password, ctx)
            if result.user is None:
                refusal = OAuthError("invalid_grant", LOGIN_FAILED)
            else:
                try:
                    scopes = grant(form.get("scope"), role_ceiling(result.user.roles))
                except OAuthError as err:
                    refusal = err
                else:
                    issued = self._issue_user(session, ctx, urls, result.user, scopes)
            if refusal is not None:
                self._refused(session, ctx, form, refusal)
        # The failure count and the refusal's record are committed before the refusal leaves.
        if refusal is not None:
            raise refusal
        return TokenResponse.of(issued)

    def _issue_user(self, session: Session, ctx: RequestContext, urls: ServerUrls,
                    user: User, scopes: ScopeSet) -> IssuedToken:
        issued = self.tokens.issue(urls, subject=user.username, kind="user", scopes=scopes,
                                   roles=user.roles, display=user.display_name,
                                   practitioner=user.practitioner)
        actor = Actor(id=user.username, kind="user", display=user.display_name,
                      roles=user.roles, scopes=scopes.strings(),
                      practitioner=user.practitioner)
        self._issued(session, replace(ctx, actor=actor), "password", issued)
        return issued

    def _client_credentials(self, form: Mapping[str, str], urls: ServerUrls,
                            ctx: RequestContext) -> TokenResponse:
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_client", "a client_assertion is required")
        if assertion_type != JWT_BEARER:
            raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
        try:
            header = jwt.unverified_header(assertion)
            claimed = jwt.unverified_claims(assertion)
        except jwt.JwtError as exc:
            raise OAuthError("invalid_client", "malformed client assertion") from exc
        client_id = claimed.get("iss")
        if not isinstance(client_id, str) or claimed.get("sub") != client_id:
            raise OAuthError("invalid_client", "assertion iss and sub must both be the client id")
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_client", "client_id does not match the assertion")
        with unit_of_work(self.engine) as session:
            client = self.clients.get(session, client_id)
            if client is None or not client.active:
                raise OAuthError("invalid_client", "unknown or disabled client")
            claims = self._verify_assertion(assertion, header, client, urls)
            scopes = grant(form.get("scope"), client.scopes)
            if not consume_jti(session, kind="client", jti=claims["jti"], issuer=client_id,
                               expires_at=claims["exp"], now=self.clock()):
                raise OAuthError("invalid_client", "client assertion already used (jti)")
            issued = self.tokens.issue(urls, subject=client_id, kind="client", scopes=scopes,
                                       display=client.name)
            actor = Actor(id=client_id, kind="client", display=client.name,
                          scopes=scopes.strings())
            self._issued(session, replace(ctx, actor=actor), "client_credentials", issued)
        return TokenResponse.of(issued)

    # -- audit ----------------------------------------------------------------------------

    def _issued(self, session: Session, ctx: RequestContext, grant_type: str,
                issued: IssuedToken) -> None:
        if self.recorder is None:
            return
        self.recorder.record(session, ctx, AccessEvent(
            "token-issued", category="security", detail={
                "grant_type": grant_type, "scope": issued.scope, "jti": issued.jti,
                "expires_in": issued.expires_in}))

    def _refused(self, session: Session, ctx: RequestContext, form: Mapping[str, str],
                 err: OAuthError) -> None:
        err.recorded = True
        if self.recorder is None:
            return
        detail: dict[str, Any] = {"grant_type": str(form.get("grant_type") or "")[:64],
                                  "error": err.error, "error_description": err.description[:200]}
        if err.error in _DENIALS:
            detail["denied"] = True
        if form.get("grant_type") == "password":
            detail["username"] = str(form.get("username") or "").strip()[:64]
        else:
            detail["client_id"] = _claimed_client(form)
        self.recorder.record(session, ctx, AccessEvent(
            "token-refused", status=err.status, detail=detail, category="security"))

    def _verify_assertion(self, assertion: str, header: Mapping[str, Any], client: Client,
                          urls: ServerUrls) -> dict[str, Any]:
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in CLIENT_ALGORITHMS:
            raise OAuthError("invalid_client",
                             f"assertion alg must be one of {', '.join(CLIENT_ALGORITHMS)}")
        jwk = client.key_for(kid) if isinstance(kid, str) else None
        if jwk is None:
            raise OAuthError("invalid_client", "assertion kid matches no registered key")
        kty, crv = CLIENT_ALGORITHMS[alg]
        if jwk.get("kty") != kty or (crv and jwk.get("crv") != crv) or \
                jwk.get("alg", alg) != alg:
            raise OAuthError("invalid_client", f"registered key {kid!r} is not for {alg}")
        try:
            claims = jwt.verify(assertion, jwt.load_key(jwk, alg), [alg])
        except jwt.JwtError as exc:
            raise OAuthError("invalid_client", "assertion signature does not verify") from exc
        self._check_assertion_claims(claims, urls)
        return claims

    def _check_assertion_claims(self, claims: Mapping[str, Any], urls: ServerUrls) -> None:
        now = self.clock()
        skew = self.auth.auth_clock_skew_seconds
        aud = claims.get("aud")
        if aud != urls.token_endpoint and not (isinstance(aud, list) and
                                               urls.token_endpoint in aud):
            raise OAuthError("invalid_client", "assertion aud must be the token endpoint URL")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise OAuthError("invalid_client", "assertion needs a numeric exp")
        if exp <= now:
            raise OAuthError("invalid_client", "assertion expired")
        if exp > now + self.auth.auth_assertion_max_lifetime_seconds:
            raise OAuthError("invalid_client", "assertion exp is too far ahead (at most "
                             f"{self.auth.auth_assertion_max_lifetime_seconds} s)")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int | float) or value > now + skew):
                raise OAuthError("invalid_client", f"assertion {name} is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise OAuthError("invalid_client", "assertion needs a jti (at most 255 characters)")


def _claimed_client(form: Mapping[str, str]) -> str:
    """The client id a refused request claimed (the assertion's unverified ``iss``)."""
    claimed: Any = form.get("client_id")
    assertion = form.get("client_assertion")
    if assertion:
        with suppress(jwt.JwtError):
            claimed = jwt.unverified_claims(assertion).get("iss") or claimed
    return str(claimed or "")[:128]
