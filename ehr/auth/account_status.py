"""Tokens of a disabled account stop working within seconds, not when they expire.

An access token is self-contained and lives ``auth_token_ttl_seconds`` (15 minutes), so
verifying its signature cannot tell that ``ehr user disable`` (or the admin page, or
``ehr client disable``) has run since. Each process remembers per account whether it was
active when last looked up, for ``auth_account_check_seconds``; the first request after that
looks again. Disabling an account therefore shuts out the tokens already issued to it in
every worker within that interval, for one indexed lookup per account per interval.

Only a disabled account is refused: accounts are disabled, never deleted, and a token names an
account that existed when the server signed it (tests sign tokens for accounts they never
create).
"""

from __future__ import annotations

from sqlalchemy import Engine

from ehr.auth.clients import Clients
from ehr.auth.clock import Clock
from ehr.auth.users import Users
from ehr.context import Actor
from ehr.db import unit_of_work


class AccountStatus:
    def __init__(self, engine: Engine, users: Users, clients: Clients, *,
                 check_seconds: float, clock: Clock) -> None:
        self.engine = engine
        self.users = users
        self.clients = clients
        self.check_seconds = check_seconds
        self.clock = clock
        # (kind, id) -> (active, until when the answer stands)
        self._seen: dict[tuple[str, str], tuple[bool, float]] = {}

    def active(self, actor: Actor) -> bool:
        """Whether the user or client behind a verified token may still act."""
        if actor.kind not in ("user", "client"):
            return True
        key = (actor.kind, actor.id)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now < seen[1]:
            return seen[0]
        active = self._look_up(actor)
        if len(self._seen) >= 4096:
            self._seen.clear()  # a bounded memory; the next requests look up again
        self._seen[key] = (active, now + self.check_seconds)
        return active

    def _look_up(self, actor: Actor) -> bool:
        with unit_of_work(self.engine, write=False) as session:
            account = (self.users.get(session, actor.id) if actor.kind == "user"
                       else self.clients.get(session, actor.id))
            return account is None or account.active
