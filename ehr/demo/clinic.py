"""The demo's hands: every record is made the way a user would make it.

FHIR requests go through the FHIR router with the signed-in user's own request context (the
same in-process path the web pages use), so access policy, clinical rules, dosing gates and
the audit trail apply exactly as in real use. Signatures use real signing assertions (the
demo user's password again, as ``/auth/reauth`` checks it). Time is the only thing the demo
bends: clinical decisions read ``Pipeline.clock``, which the demo sets to the moment each
past event happened, as the tests do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.auth.service import AuthService
from ehr.auth.web_sessions import user_actor
from ehr.context import SYSTEM, Actor, RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.router import FhirRouter
from ehr.web.fhir_calls import FhirCalls, FhirResult

USER_AGENT = "ehr demo"
MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class DemoFailed(RuntimeError):
    """A demo step was refused: the demo data no longer fits the service's rules."""


@dataclass
class DemoClock:
    """``Pipeline.clock``: the instant (microseconds) the current demo step happens at."""

    now: int = field(default_factory=instants.now_us)

    def __call__(self) -> int:
        return self.now


@dataclass
class Clinic:
    engine: Engine
    pipeline: Pipeline
    auth: AuthService
    passwords: dict[str, str]
    clock: DemoClock = field(default_factory=DemoClock)
    actors: dict[str, Actor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.router = FhirRouter(self.engine, self.pipeline)
        self.pipeline.assertions = self.auth.assertions
        self.pipeline.clock = self.clock

    # -- who ------------------------------------------------------------------------------

    def ctx(self, username: str | None) -> RequestContext:
        """A fresh request context of the user (None: the service itself)."""
        actor = SYSTEM if username is None else self.actor(username)
        return RequestContext(actor=actor, request_id=uuid.uuid4().hex, user_agent=USER_AGENT)

    def actor(self, username: str) -> Actor:
        if username not in self.actors:
            with unit_of_work(self.engine, write=False) as session:
                user = self.auth.users.get(session, username)
            if user is None:
                raise DemoFailed(f"no demo user {username!r}")
            self.actors[username] = user_actor(user)
        return self.actors[username]

    def forget(self, username: str) -> None:
        """Drop a cached actor (its Practitioner link changed)."""
        self.actors.pop(username, None)

    # -- time -----------------------------------------------------------------------------

    def at(self, us: int) -> str:
        """Set the clinical clock to ``us``; the FHIR instant of it."""
        self.clock.now = us
        return instants.instant(us)

    # -- FHIR -----------------------------------------------------------------------------

    def call(self, who: str | None, method: str, path: str,
             body: dict[str, Any] | None = None) -> FhirResult:
        path, _, query = path.partition("?")
        result = FhirCalls(self.router, self.ctx(who)).call(method, path, parse_qsl(query),
                                                            body=body)
        if not result.ok:
            raise DemoFailed(f"{who or 'service'} {method} {path}: {result.status} "
                             f"{'; '.join(result.problems()) or result.body}")
        return result

    def create(self, who: str | None, resource: dict[str, Any]) -> str:
        return str(self.call(who, "POST", resource["resourceType"], resource).body["id"])

    def read(self, who: str | None, path: str) -> dict[str, Any]:
        return self.call(who, "GET", path).body

    def update(self, who: str | None, resource: dict[str, Any]) -> dict[str, Any]:
        path = f"{resource['resourceType']}/{resource['id']}"
        return self.call(who, "PUT", path, resource).body

    def operation(self, who: str | None, path: str, **params: Any) -> dict[str, Any]:
        """POST ``path`` (``Type/id/$op``) with a Parameters body; values are (type, value)."""
        parameter = [{"name": name.replace("_", "-"), key: value}
                     for name, (key, value) in params.items()]
        body = {"resourceType": "Parameters", "parameter": parameter}
        return self.call(who, "POST", path, body).body

    # -- signatures -----------------------------------------------------------------------

    def assertion(self, username: str, action: str) -> str:
        """Re-authenticate ``username`` (their password again) as ``/auth/reauth`` does."""
        ctx = self.ctx(username)
        with bind_context(ctx), unit_of_work(self.engine) as session:
            issued = self.auth.assertions.issue(session, username, self.passwords[username],
                                                action)
            self.pipeline.recorder.record(session, ctx, AccessEvent(
                "reauth", status=200 if issued else 403, category="security",
                detail={"action": action}))
        if issued is None:
            raise DemoFailed(f"{username} could not re-authenticate")
        return issued.assertion
