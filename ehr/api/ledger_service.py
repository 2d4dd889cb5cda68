"""How every ``/api/ledger`` request runs: who is acting, then the shared ledger operations
(role check, one transaction, audit record: ``ehr.clinical.ledger.operations``).

Flags raised by a count variance are stored by ``ehr.fhir.ledger_flags.flag_writer`` (the one
write path, as the service itself, in the count's transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy import Engine
from sqlmodel import Session

from ehr.auth.service import AuthService
from ehr.clinical.ledger.operations import Done, LedgerOperations
from ehr.clinical.ledger.protocol import LedgerProtocol, load_protocol
from ehr.clinical.ledger.witnesses import WitnessCheck
from ehr.context import SYSTEM, Actor, RequestContext
from ehr.fhir.api import base_url, request_context
from ehr.fhir.ledger_flags import flag_writer
from ehr.fhir.pipeline import Pipeline

__all__ = ["Authenticator", "Done", "LedgerService"]

T = TypeVar("T")
Authenticator = Callable[[str | None, str], Actor]


class LedgerService:
    def __init__(self, engine: Engine, pipeline: Pipeline, auth: AuthService,
                 authenticate: Authenticator | None,
                 protocol: LedgerProtocol | None = None) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.authenticate = authenticate
        self.ops = LedgerOperations(engine, pipeline.recorder,
                                    WitnessCheck(auth.assertions, auth.users),
                                    protocol or load_protocol(), flag_writer(pipeline))

    @property
    def witnesses(self) -> WitnessCheck:
        return self.ops.witnesses

    @property
    def protocol(self) -> LedgerProtocol:
        return self.ops.protocol

    def context(self, request: Request) -> RequestContext:
        base = base_url(request, self.pipeline.settings.base_url)
        actor = SYSTEM
        if self.authenticate is not None:
            actor = self.authenticate(request.headers.get("authorization"), base)
        return request_context(request, base, actor)

    def run(self, request: Request, action: str,
            work: Callable[[Session, RequestContext], Done[T]]) -> T:
        """Authenticate, then check the role and run ``work`` in one audited transaction."""
        return self.ops.run(self.context(request), action, work,
                            str(request.url.query) or None)
