"""Posting to the ledger: one entry, the lot's new balance, in the caller's transaction.

Every movement of stock goes through :func:`post` with the lot's balance row already locked
(``repository.lock_lot``), so the check "the balance stays at or above zero" and the write of
the new balance cannot interleave with another transaction's. The balance row's CHECK
constraint is the database's own guard should code ever skip the lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ehr.clinical.ledger import repository
from ehr.clinical.ledger.quantities import ml_of, text
from ehr.clinical.ledger.repository import LotState
from ehr.clinical.ledger.tables import EntryRow
from ehr.errors import Issue, Unprocessable
from ehr.instants import now_us

KINDS = ("receipt", "administration", "waste", "destruction", "loss", "correction")


@dataclass(frozen=True)
class Posting:
    """What one entry says. ``mg`` is signed: positive adds stock, negative removes it."""

    kind: str
    mg: Decimal
    occurred_us: int
    actor_id: str
    actor_display: str
    request_id: str | None = None
    patient: str | None = None
    administration: str | None = None
    witnesses: tuple[tuple[str, str], ...] = ()  # (user id, printed name)
    corrects: int | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def refuse(*problems: str, expression: str = "") -> Unprocessable:
    where = (expression,) if expression else ()
    return Unprocessable(issues=[Issue("business-rule", p, "error", where) for p in problems])


def post(session: Session, state: LotState, posting: Posting) -> EntryRow:
    """Append the entry and move the locked lot's balance; refuse a balance below zero."""
    if posting.kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {posting.kind!r}")
    lot = state.lot
    assert lot.id is not None
    after = state.mg + posting.mg
    if after < 0:
        raise refuse(f"lot {lot.lot_number} holds {text(state.mg)} mg; "
                     f"{text(-posting.mg)} mg cannot be taken from it")
    now = now_us()
    witnesses = [*posting.witnesses, ("", ""), ("", "")]
    row = EntryRow(
        location_pk=lot.location_pk, lot_pk=lot.id, kind=posting.kind, mg=posting.mg,
        ml=ml_of(posting.mg, lot.concentration), balance_mg=after,
        balance_ml=ml_of(after, lot.concentration), occurred_us=posting.occurred_us,
        recorded_us=now, actor_id=posting.actor_id, actor_display=posting.actor_display,
        request_id=posting.request_id, patient=posting.patient,
        administration=posting.administration,
        witness_id=witnesses[0][0] or None, witness_display=witnesses[0][1] or None,
        witness2_id=witnesses[1][0] or None, witness2_display=witnesses[1][1] or None,
        corrects_id=posting.corrects, reason=posting.reason,
        detail=json.dumps(posting.detail, sort_keys=True, separators=(",", ":"), default=str))
    repository.add(session, row)
    assert row.id is not None
    repository.set_balance(session, lot.id, after, ml_of(after, lot.concentration), row.id, now)
    return row


def detail_of(row: EntryRow) -> dict[str, Any]:
    value = json.loads(row.detail or "{}")
    return value if isinstance(value, dict) else {}
