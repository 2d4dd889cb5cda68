"""The audit recorder: what every read, write and security event passes through.

``record`` queues the record on the request's session; the queue is written just before that
session commits (``before_commit``), so a write and its record commit or roll back together and
a read's record is committed before the response leaves. If that fails the commit fails: the
request is refused with 503 and no data leaves (fail closed).

On PostgreSQL with a seal interval (the server's default) the records are written unnumbered
to ``audit_pending`` and this process's ``BackgroundSealer`` chains them after the commit
(``sequencer``): requests never wait for the chain's lock. Otherwise (SQLite, the CLI,
``seal_interval_ms=0``) they are chained inside the request's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.audit.sealer import BackgroundSealer, settle
from ehr.audit.sequencer import Pending, Sequencer
from ehr.context import RequestContext
from ehr.errors import ServiceUnavailable
from ehr.instants import instant

_QUEUE = "ehr_audit_queue"
_RECORDER = "ehr_audit_recorder"
_ENQUEUED = "ehr_audit_enqueued"


class AuditUnavailable(ServiceUnavailable):
    """The audit record could not be written, so the request must not succeed."""



def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # floats and decimals become text: the canonical form has no floats


def build_pending(ctx: RequestContext, ev: AccessEvent, now: int) -> Pending:
    actor = ctx.actor
    purpose = str(ev.detail.get("purpose_of_use") or ctx.purpose_of_use)
    record = {
        "time": instant(now),
        "category": ev.category,
        "interaction": ev.interaction,
        "outcome": ev.outcome,
        "status": ev.status,
        "actor": {"id": actor.id, "kind": actor.kind, "display": actor.display,
                  "roles": sorted(actor.roles), "practitioner": actor.practitioner},
        "source": {"ip": ctx.source_ip, "user_agent": ctx.user_agent},
        "resource": None if ev.rtype is None else {
            "type": ev.rtype, "id": ev.rid, "version": ev.version_id},
        "patients": list(dict.fromkeys(ev.patients)),
        "request_id": ctx.request_id,
        "purpose_of_use": purpose,
        "protected": sorted(set(ev.protected)),
        "query": ev.query,
        "detail": _json_safe({k: v for k, v in ev.detail.items() if k != "purpose_of_use"}),
    }
    columns = {
        "time": now, "category": ev.category, "interaction": ev.interaction,
        "outcome": ev.outcome, "status": ev.status, "actor_id": actor.id,
        "actor_kind": actor.kind, "rtype": ev.rtype, "rid": ev.rid,
        "version_id": ev.version_id, "request_id": ctx.request_id, "purpose": purpose,
        "protected": bool(ev.protected),
    }
    return Pending(record, columns, tuple(ev.patients))


class AuditRecorder:
    """Implements the pipeline's Recorder protocol."""

    def __init__(self, sequencer: Sequencer, clock: Callable[[], int],
                 seal_interval_ms: float = 0) -> None:
        self.sequencer = sequencer
        self.clock = clock
        self.seal_interval_ms = seal_interval_ms
        self._sealers: dict[Engine, BackgroundSealer] = {}

    def record(self, session: Session, ctx: RequestContext, ev: AccessEvent) -> None:
        queue = session.info.get(_QUEUE)
        if queue is None:
            queue = session.info[_QUEUE] = []
            session.info[_RECORDER] = self  # the session hooks below find their recorder here
        queue.append(build_pending(ctx, ev, self.clock()))

    def settle(self, bind: Session | Engine) -> None:
        """Seal every record committed so far, so the trail's queries see them all."""
        engine = _engine(bind) if isinstance(bind, Session) else bind
        if engine is not None:
            self.seal_now(engine)

    def seal_now(self, engine: Engine) -> int:
        """Seal, in transactions of their own, every record committed before the call."""
        if engine.dialect.name != "postgresql":
            return 0  # SQLite chains inside the request's transaction: nothing waits
        try:
            return settle(engine, self.sequencer, self.clock)
        except SQLAlchemyError as exc:
            raise AuditUnavailable("The audit trail could not be sealed") from exc

    def close(self) -> None:
        """Stop the background sealers, sealing what they leave (graceful shutdown)."""
        sealers, self._sealers = list(self._sealers.values()), {}
        for sealer in sealers:
            sealer.close()

    def _background(self, session: Session) -> Engine | None:
        """The engine whose sealer will chain this session's records (None: chain them now)."""
        if self.seal_interval_ms <= 0:
            return None
        engine = _engine(session)
        return engine if engine is not None and engine.dialect.name == "postgresql" else None

    def mark(self, session: Session) -> int:
        """A point to roll the queue back to when a savepoint (a batch entry) is undone."""
        return len(session.info.get(_QUEUE) or [])

    def rollback_to(self, session: Session, mark: int) -> None:
        queue = session.info.get(_QUEUE)
        if queue is not None:
            del queue[mark:]

    def _flush(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint's release: the records wait for the real commit
        queue = session.info.get(_QUEUE) or []
        if not queue:
            return
        pending = list(queue)
        queue.clear()
        try:
            engine = self._background(session)
            if engine is not None:
                self.sequencer.enqueue(session, pending)
                session.info[_ENQUEUED] = engine
            else:
                self.sequencer.append(session, pending, self.clock())
        except SQLAlchemyError as exc:
            raise AuditUnavailable(
                "The audit trail could not be written; nothing was done") from exc

    def _wake_sealer(self, session: Session) -> None:
        engine = session.info.pop(_ENQUEUED, None)
        if engine is None:
            return
        sealer = self._sealers.get(engine)
        if sealer is None:
            sealer = self._sealers.setdefault(engine, BackgroundSealer(
                engine, self.sequencer, self.clock, self.seal_interval_ms / 1000))
        sealer.notify()


def _engine(session: Session) -> Engine | None:
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    return engine if isinstance(engine, Engine) else None


# Hooks on every session (cheaper than listeners per session): they act only on sessions
# that hold audit records.
@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: Session) -> None:
    recorder = session.info.get(_RECORDER)
    if recorder is not None:
        recorder._flush(session)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: Session) -> None:
    recorder = session.info.get(_RECORDER)
    if recorder is not None:
        recorder._wake_sealer(session)


@event.listens_for(OrmSession, "after_rollback")
def _discard(session: Session) -> None:
    # A rolled-back transaction's records describe nothing that happened. A savepoint's
    # rollback fires this too: its records are dropped by ``rollback_to`` instead.
    if session.in_nested_transaction():
        return
    session.info.pop(_ENQUEUED, None)
    queue = session.info.get(_QUEUE)
    if queue is not None:
        queue.clear()
