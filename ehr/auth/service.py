"""The identity layer assembled once per process: key, token service, users, clients, grants.

The app builds one ``AuthService`` and hands it both to the auth routes and to whatever turns
bearer headers into actors, so there is one parsed server key (verification stays pure CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ehr.auth.account_status import AccountStatus
from ehr.auth.clients import Clients
from ehr.auth.clock import Clock, system_clock
from ehr.auth.identity import actor_from_bearer, invalid_token
from ehr.auth.keys import ServerKey, load_or_create_server_key
from ehr.auth.oauth import TokenEndpoint
from ehr.auth.reauth import SigningAssertions
from ehr.auth.settings import AuthSettings
from ehr.auth.tokens import ServerUrls, TokenService
from ehr.auth.users import EventRecorder, Users
from ehr.config import Settings
from ehr.context import Actor


@dataclass(frozen=True)
class AuthService:
    engine: Engine
    settings: Settings
    auth: AuthSettings
    key: ServerKey
    tokens: TokenService
    users: Users
    clients: Clients
    token_endpoint: TokenEndpoint
    assertions: SigningAssertions
    accounts: AccountStatus
    # Security events (tokens, login failures, re-authentication, break-the-glass) go to the
    # audit trail through it; None only in tests of the identity layer alone.
    recorder: EventRecorder | None = None

    @classmethod
    def create(cls, engine: Engine, settings: Settings, *, key: ServerKey | None = None,
               auth: AuthSettings | None = None, clock: Clock = system_clock,
               recorder: EventRecorder | None = None) -> AuthService:
        auth = auth or AuthSettings()
        key = key or load_or_create_server_key(settings, auth)
        tokens = TokenService(key, ttl_seconds=auth.auth_token_ttl_seconds, clock=clock)
        users = Users(auth, clock=clock, recorder=recorder)
        clients = Clients(clock)
        endpoint = TokenEndpoint(engine, tokens, users=users, clients=clients, auth=auth,
                                 clock=clock, recorder=recorder)
        assertions = SigningAssertions(key, users, auth=auth, clock=clock)
        accounts = AccountStatus(engine, users, clients,
                                 check_seconds=auth.auth_account_check_seconds, clock=clock)
        return cls(engine, settings, auth, key, tokens, users, clients, endpoint, assertions,
                   accounts, recorder)

    def urls(self, request_fhir_base: str) -> ServerUrls:
        """URLs from the configured FHIR base, else from the one the request came in on."""
        return ServerUrls.for_fhir_base(self.settings.base_url or request_fhir_base)

    def actor(self, authorization: str | None, request_fhir_base: str) -> Actor:
        """The actor of a request's ``Authorization`` header (Unauthorized when unusable,
        which includes a token whose account has been disabled since it was issued)."""
        actor = actor_from_bearer(authorization, self.tokens, self.urls(request_fhir_base))
        if not self.accounts.active(actor):
            raise invalid_token()
        return actor
