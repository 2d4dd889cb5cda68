"""The seams of the one write path and the one read path.

A ``Pipeline`` carries the access guard (filled by the identity issue), the audit recorder
(filled by the audit issue) and the clinical rule registry. The defaults allow everything and
record nothing, so the store and REST layer run on their own; the composition root swaps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.auth.reauth import SigningAssertions
from ehr.config import Settings
from ehr.context import RequestContext
from ehr.store.criteria import Restriction
from ehr.store.hooks import RuleRegistry
from ehr.store.repository import StoredResource, get_current


class Guard(Protocol):
    def authorize(
        self,
        session: Session,
        ctx: RequestContext,
        interaction: str,
        rtype: str | None,
        *,
        resource: dict[str, Any] | None = None,
        stored: StoredResource | None = None,
    ) -> None:
        """Raise Forbidden / NotFound when the actor may not do this."""

    def restriction(
        self, session: Session, ctx: RequestContext, rtype: str | None
    ) -> Restriction | None:
        """The SQL filter that limits what a search or history may return."""

    def view(self, session: Session, ctx: RequestContext, stored: StoredResource) -> StoredResource:
        """The form of a record this caller receives (e.g. metadata only)."""

    def fetch_visible(
        self, session: Session, ctx: RequestContext, rtype: str, rid: str
    ) -> StoredResource | None:
        """The current, live version if this caller may read it (None: look closer)."""

    def purpose_of_use(
        self, session: Session, ctx: RequestContext, patients: Iterable[str]
    ) -> str:
        """``TREAT``, or ``ETREAT`` when the access rests on break-the-glass."""


class Recorder(Protocol):
    def record(self, session: Session, ctx: RequestContext, event: AccessEvent) -> None:
        """Append an audit record inside the request's transaction."""

    def mark(self, session: Session) -> int:
        """A point to return to when a savepoint is rolled back."""

    def rollback_to(self, session: Session, mark: int) -> None:
        """Forget the records made since ``mark`` (their savepoint was rolled back)."""

    def settle(self, bind: Session | Engine) -> None:
        """Chain every committed record, so queries of the trail see them all."""


class AllowAll:
    def authorize(
        self,
        session: Session,
        ctx: RequestContext,
        interaction: str,
        rtype: str | None,
        *,
        resource: dict[str, Any] | None = None,
        stored: StoredResource | None = None,
    ) -> None:
        return None

    def restriction(
        self, session: Session, ctx: RequestContext, rtype: str | None
    ) -> Restriction | None:
        return None

    def view(self, session: Session, ctx: RequestContext, stored: StoredResource) -> StoredResource:
        return stored

    def fetch_visible(
        self, session: Session, ctx: RequestContext, rtype: str, rid: str
    ) -> StoredResource | None:
        stored = get_current(session, rtype, rid)
        return stored if stored is not None and not stored.deleted else None

    def purpose_of_use(
        self, session: Session, ctx: RequestContext, patients: Iterable[str]
    ) -> str:
        return ctx.purpose_of_use


class NullRecorder:
    def record(self, session: Session, ctx: RequestContext, event: AccessEvent) -> None:
        return None

    def mark(self, session: Session) -> int:
        return 0

    def rollback_to(self, session: Session, mark: int) -> None:
        return None

    def settle(self, bind: Session | Engine) -> None:
        return None


@dataclass
class Pipeline:
    settings: Settings
    guard: Guard = field(default_factory=AllowAll)
    recorder: Recorder = field(default_factory=NullRecorder)
    rules: RuleRegistry = field(default_factory=RuleRegistry)
    # Verifies and consumes the single-use signing assertions of ``/auth/reauth`` for operations
    # that record a signature; set by the composition root once the identity layer exists.
    assertions: SigningAssertions | None = None
    # The clock of clinical decisions (e.g. an eligibility decision's date and expiry), in
    # microseconds; tests move it instead of waiting.
    clock: Callable[[], int] = instants.now_us


__all__ = ["AccessEvent", "AllowAll", "Guard", "NullRecorder", "Pipeline", "Recorder"]
