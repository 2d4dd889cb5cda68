"""The audit recorder: what every read, write and security event passes through.

``record`` queues the record on the request's session; the queue is appended to the chain
just before that session commits (``before_commit``), so a write and its record commit or roll
back together, a read's record is committed before the response leaves, and the chain's lock
is taken last. If the append fails the commit fails: the request is refused with 503 and no
data leaves (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.audit.sequencer import Pending, Sequencer
from ehr.context import RequestContext
from ehr.errors import ServiceUnavailable
from ehr.instants import instant

_QUEUE = "ehr_audit_queue"


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

    def __init__(self, sequencer: Sequencer, clock: Callable[[], int]) -> None:
        self.sequencer = sequencer
        self.clock = clock

    def record(self, session: Session, ctx: RequestContext, ev: AccessEvent) -> None:
        queue = session.info.get(_QUEUE)
        if queue is None:
            queue = session.info[_QUEUE] = []
            event.listen(session, "before_commit", self._flush)
            event.listen(session, "after_rollback", _discard)
        queue.append(build_pending(ctx, ev, self.clock()))

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
            self.sequencer.append(session, pending, self.clock())
        except SQLAlchemyError as exc:
            raise AuditUnavailable(
                "The audit trail could not be written; nothing was done") from exc


def _discard(session: Session) -> None:
    # A rolled-back transaction's records describe nothing that happened. A savepoint's
    # rollback fires this too: its records are dropped by ``rollback_to`` instead.
    if session.in_nested_transaction():
        return
    queue = session.info.get(_QUEUE)
    if queue is not None:
        queue.clear()
