"""How a ledger request runs, whoever asks (the REST API or the web pages): the role check,
one transaction, and the audit record.

Each request is one unit of work: the ledger change (or the report's reads) and its audit
record commit together, so a read's record is committed before the answer leaves. A refused
request (4xx) is recorded in a transaction of its own, as the FHIR layer does. Audit records
use the interaction ``operation:ledger-<action>`` about the registered ``Location``, with the
patients an entry or report concerns.

A count variance raises a Flag, a FHIR resource: it must be stored through the one write path,
which this layer cannot import, so the caller hands in ``store_flag`` (it writes as the service
itself, in the count's transaction: the person counting may not hold Flag-create rights, and
the Flag must exist whatever their role).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.clinical.ledger import counts, permissions
from ehr.clinical.ledger.protocol import LedgerProtocol
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.tables import CountLineRow, CountRow, EntryRow
from ehr.clinical.ledger.witnesses import WitnessCheck
from ehr.context import RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.errors import Conflict, EhrError

T = TypeVar("T")
FlagStore = Callable[[Session, RequestContext, dict[str, Any]], str]


class AuditSink(Protocol):
    def record(self, session: Session, ctx: RequestContext, ev: AccessEvent) -> None: ...


@dataclass
class Done(Generic[T]):
    """A handler's result with what its audit record should say."""

    value: T
    location: str | None = None
    patients: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def entry_done(entry: EntryRow, value: T, location_id: str) -> Done[T]:
    """The audit facts of a recorded entry: its patient, id, kind and quantity."""
    patients = (entry.patient.split("/", 1)[1],) if entry.patient else ()
    return Done(value, location_id, patients,
                {"entry": entry.id, "kind": entry.kind, "mg": qty(entry.mg)})


@dataclass
class LedgerOperations:
    engine: Engine
    recorder: AuditSink
    witnesses: WitnessCheck
    protocol: LedgerProtocol
    store_flag: FlagStore

    def run(self, ctx: RequestContext, action: str,
            work: Callable[[Session, RequestContext], Done[T]],
            query: str | None = None) -> T:
        """Check the role, run ``work`` in one audited transaction."""
        interaction = f"operation:ledger-{action}"
        try:
            permissions.require(ctx.actor, action)
            with bind_context(ctx), unit_of_work(self.engine) as session:
                done = work(session, ctx)
                self.recorder.record(session, ctx, AccessEvent(
                    interaction, "Location" if done.location else None, done.location,
                    patients=done.patients, query=query, detail=done.detail))
            return done.value
        except IntegrityError as exc:
            # Two requests raced for the same unique row (a new lot, a task's closure).
            err = Conflict("the ledger changed concurrently; read it again and retry")
            self.refused(ctx, interaction, query, err)
            raise err from exc
        except EhrError as err:
            if err.status < 500:
                self.refused(ctx, interaction, query, err)
            raise

    def refused(self, ctx: RequestContext, interaction: str, query: str | None,
                err: EhrError) -> None:
        with unit_of_work(self.engine) as session:
            self.recorder.record(session, ctx, AccessEvent(
                interaction, status=err.status, query=query,
                category="security" if err.status in (401, 403) else "rest",
                detail={"reason": err.diagnostics[:300]}))

    def count(self, session: Session, ctx: RequestContext,
              count: counts.PhysicalCount) -> tuple[CountRow, list[CountLineRow]]:
        """Reconcile a physical count, raise the variance Flag if any, append the count."""
        rec = counts.reconcile(session, self.protocol, count)
        flag = counts.variance_flag(rec, ctx.actor)
        ref = self.store_flag(session, ctx, flag) if flag is not None else None
        return counts.record_count(session, ctx, rec, ref)
