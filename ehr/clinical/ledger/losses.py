"""Theft and loss: the entry that takes the missing stock off the books, and the two
follow-ups the DEA expects, tracked as ledger tasks with deadlines:

- written notice to the DEA Field Division within 1 business day of discovery;
- DEA Form 106 within 45 days of discovery.

A task is closed with a reference (the notice's or Form 106's confirmation); an open task past
its deadline is overdue. Deadlines follow ``protocols/ledger.json`` (business days skip
weekends and the listed holidays, in the protocol's time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ehr.clinical.ledger import repository
from ehr.clinical.ledger.entries import amount, locked_lot
from ehr.clinical.ledger.journal import Posting, post, refuse
from ehr.clinical.ledger.protocol import LedgerProtocol
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.repository import TaskState
from ehr.clinical.ledger.tables import EntryRow, TaskClosureRow, TaskRow
from ehr.context import RequestContext
from ehr.errors import BadRequest, Conflict, NotFound
from ehr.instants import now_us, to_datetime

LOSS_KINDS = ("theft", "loss")
DEA_NOTICE = "dea-notice"
FORM_106 = "form-106"


@dataclass(frozen=True)
class Loss:
    location_id: str
    lot_number: str
    mg: Decimal | None
    ml: Decimal | None
    discovered_us: int
    circumstances: str
    kind: str = "theft"


def record_loss(session: Session, ctx: RequestContext, protocol: LedgerProtocol,
                loss: Loss) -> tuple[EntryRow, list[TaskRow]]:
    if loss.kind not in LOSS_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(LOSS_KINDS)}", expression=("kind",))
    if not loss.circumstances.strip():
        raise BadRequest("describe the circumstances of the theft or loss",
                         expression=("circumstances",))
    now = now_us()
    if loss.discovered_us > now + 60_000_000:
        raise refuse("the discovery time is in the future", expression="discovered")
    state = locked_lot(session, loss.location_id, loss.lot_number)
    mg = amount(state.lot, loss.mg, loss.ml, "quantity")
    entry = post(session, state, Posting(
        kind="loss", mg=-mg, occurred_us=loss.discovered_us, actor_id=ctx.actor.id,
        actor_display=ctx.actor.display or ctx.actor.id, request_id=ctx.request_id,
        detail={"type": loss.kind, "circumstances": loss.circumstances.strip(),
                "quantity_mg": qty(mg)}))
    assert entry.id is not None
    discovered = to_datetime(loss.discovered_us)
    what = f"{loss.kind} of {qty(mg)} mg from lot {loss.lot_number} (ledger entry {entry.id})"
    tasks = [
        TaskRow(entry_pk=entry.id, location_pk=entry.location_pk, kind=DEA_NOTICE,
                description=f"Written notice to the DEA Field Division of the {what}",
                due_us=protocol.dea_notice_due(discovered), created_us=now),
        TaskRow(entry_pk=entry.id, location_pk=entry.location_pk, kind=FORM_106,
                description=f"DEA Form 106 for the {what}",
                due_us=protocol.form_106_due(discovered), created_us=now),
    ]
    for task in tasks:
        repository.add(session, task)
    return entry, tasks


def close_task(session: Session, ctx: RequestContext, task_id: int, reference: str,
               note: str | None = None) -> TaskState:
    if not reference.strip():
        raise BadRequest("closing a task needs a reference (e.g. the DEA confirmation number)",
                         expression=("reference",))
    found = repository.task(session, task_id)
    if found is None:
        raise NotFound(f"ledger task {task_id} does not exist")
    if found.closure is not None:
        raise Conflict(f"ledger task {task_id} was already closed")
    closure = TaskClosureRow(task_pk=task_id, closed_us=now_us(), reference=reference.strip(),
                             note=note, actor_id=ctx.actor.id,
                             actor_display=ctx.actor.display or ctx.actor.id)
    try:
        with session.begin_nested():
            repository.add(session, closure)
    except IntegrityError as exc:  # closed by someone else a moment ago
        raise Conflict(f"ledger task {task_id} was already closed") from exc
    return TaskState(found.task, closure)


def task_status(state: TaskState, now: int) -> str:
    if state.closure is not None:
        return "completed"
    return "overdue" if state.task.due_us < now else "open"
