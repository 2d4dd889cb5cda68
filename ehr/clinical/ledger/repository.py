"""Every SQL statement of the ledger. Functions only add and flush; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ehr.clinical.ledger.tables import (
    BalanceRow,
    CountLineRow,
    CountRow,
    EntryRow,
    LocationRow,
    LotRow,
    TaskClosureRow,
    TaskRow,
)

# -- locations -----------------------------------------------------------------------------


def location(session: Session, location_id: str) -> LocationRow | None:
    return session.exec(select(LocationRow).where(LocationRow.location_id == location_id)
                        ).first()


def location_by_pk(session: Session, pk: int) -> LocationRow | None:
    return session.get(LocationRow, pk)


def locations(session: Session) -> list[LocationRow]:
    return list(session.exec(select(LocationRow).order_by(col(LocationRow.location_id))).all())


def location_ids(session: Session, limit: int) -> list[str]:
    rows = session.exec(select(LocationRow.location_id).order_by(col(LocationRow.id))
                        .limit(limit)).all()
    return list(rows)


def add(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


def update_location(session: Session, row: LocationRow, values: dict[str, Any]) -> LocationRow:
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


# -- lots and balances ---------------------------------------------------------------------


@dataclass(frozen=True)
class LotState:
    lot: LotRow
    mg: Decimal
    last_entry: int


def _lot_query(location_pk: int) -> Any:
    return (select(LotRow, BalanceRow).join(BalanceRow, col(BalanceRow.lot_pk) == LotRow.id)
            .where(LotRow.location_pk == location_pk))


def lock_lot(session: Session, location_pk: int, lot_number: str) -> LotState | None:
    """The lot with its balance row locked until the transaction ends.

    PostgreSQL takes the row lock here (a concurrent draw waits, then sees the new balance);
    SQLite ignores FOR UPDATE because a writing unit of work already holds the database's
    write lock from ``BEGIN IMMEDIATE``.
    """
    stmt = (_lot_query(location_pk).where(LotRow.lot_number == lot_number)
            .with_for_update(of=BalanceRow)
            # The locked read must win over anything this session cached earlier.
            .execution_options(populate_existing=True))
    found = session.exec(stmt).first()
    if found is None:
        return None
    lot, balance = found
    return LotState(lot, balance.mg, balance.last_entry)


def lock_lot_by_pk(session: Session, lot_pk: int) -> LotState | None:
    lot = session.get(LotRow, lot_pk)
    return None if lot is None else lock_lot(session, lot.location_pk, lot.lot_number)


def lot(session: Session, location_pk: int, lot_number: str) -> LotRow | None:
    return session.exec(select(LotRow).where(LotRow.location_pk == location_pk,
                                             LotRow.lot_number == lot_number)).first()


def lot_by_pk(session: Session, pk: int) -> LotRow | None:
    return session.get(LotRow, pk)


def lots(session: Session, location_pk: int) -> list[tuple[LotRow, BalanceRow]]:
    rows = session.exec(_lot_query(location_pk).order_by(col(LotRow.lot_number))).all()
    return [(lot_row, balance) for lot_row, balance in rows]


def add_lot(session: Session, row: LotRow, now: int) -> LotRow:
    add(session, row)
    assert row.id is not None
    add(session, BalanceRow(lot_pk=row.id, mg=Decimal(0), ml=Decimal(0), last_entry=0,
                            updated_us=now))
    return row


def set_balance(session: Session, lot_pk: int, mg: Decimal, ml: Decimal, entry: int,
                now: int) -> None:
    session.execute(sa.update(BalanceRow).where(col(BalanceRow.lot_pk) == lot_pk)
                    .values(mg=mg, ml=ml, last_entry=entry, updated_us=now))


# -- entries -------------------------------------------------------------------------------


def entry(session: Session, pk: int) -> EntryRow | None:
    return session.get(EntryRow, pk)


def correction_of(session: Session, pk: int) -> EntryRow | None:
    return session.exec(select(EntryRow).where(EntryRow.corrects_id == pk)).first()


@dataclass(frozen=True)
class EntryFilter:
    location_pk: int | None = None
    lot_pk: int | None = None
    kinds: tuple[str, ...] = ()
    start_us: int | None = None
    end_us: int | None = None  # exclusive


def entries(session: Session, flt: EntryFilter) -> list[EntryRow]:
    stmt = select(EntryRow)
    if flt.location_pk is not None:
        stmt = stmt.where(EntryRow.location_pk == flt.location_pk)
    if flt.lot_pk is not None:
        stmt = stmt.where(EntryRow.lot_pk == flt.lot_pk)
    if flt.kinds:
        stmt = stmt.where(col(EntryRow.kind).in_(flt.kinds))
    if flt.start_us is not None:
        stmt = stmt.where(EntryRow.occurred_us >= flt.start_us)
    if flt.end_us is not None:
        stmt = stmt.where(EntryRow.occurred_us < flt.end_us)
    return list(session.exec(stmt.order_by(col(EntryRow.occurred_us), col(EntryRow.id))).all())


def entries_of_lot(session: Session, lot_pk: int) -> list[EntryRow]:
    """A lot's entries in the order they moved its balance."""
    return list(session.exec(select(EntryRow).where(EntryRow.lot_pk == lot_pk)
                             .order_by(col(EntryRow.id))).all())


def balance_at(session: Session, lot_pk: int, at_us: int) -> Decimal:
    """A lot's book balance in mg from the entries that occurred up to ``at_us``."""
    total = session.execute(
        sa.select(sa.func.sum(EntryRow.mg))
        .where(col(EntryRow.lot_pk) == lot_pk, col(EntryRow.occurred_us) <= at_us)).scalar()
    return Decimal(0) if total is None else Decimal(total)


def totals_by_kind(session: Session, lot_pk: int) -> dict[str, Decimal]:
    rows = session.execute(
        sa.select(EntryRow.kind, sa.func.sum(EntryRow.mg))  # type: ignore[call-overload]
        .where(EntryRow.lot_pk == lot_pk).group_by(EntryRow.kind)).all()
    return {kind: Decimal(total) for kind, total in rows}


# -- counts --------------------------------------------------------------------------------


def count_lines(session: Session, count_pk: int) -> list[CountLineRow]:
    return list(session.exec(select(CountLineRow).where(CountLineRow.count_pk == count_pk)
                             .order_by(col(CountLineRow.id))).all())


def counts(session: Session, location_pk: int | None, *, variance_only: bool,
           start_us: int | None = None, end_us: int | None = None) -> list[CountRow]:
    stmt = select(CountRow)
    if location_pk is not None:
        stmt = stmt.where(CountRow.location_pk == location_pk)
    if variance_only:
        stmt = stmt.where(col(CountRow.variance).is_(True))
    if start_us is not None:
        stmt = stmt.where(CountRow.counted_us >= start_us)
    if end_us is not None:
        stmt = stmt.where(CountRow.counted_us < end_us)
    return list(session.exec(stmt.order_by(col(CountRow.counted_us), col(CountRow.id))).all())


# -- tasks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskState:
    task: TaskRow
    closure: TaskClosureRow | None


def _task_query() -> Any:
    return select(TaskRow, TaskClosureRow).outerjoin(
        TaskClosureRow, col(TaskClosureRow.task_pk) == TaskRow.id)


def task(session: Session, pk: int) -> TaskState | None:
    found = session.exec(_task_query().where(TaskRow.id == pk)).first()
    return None if found is None else TaskState(*found)


def tasks(session: Session, *, location_pk: int | None = None, open_only: bool = False,
          due_before_us: int | None = None, entry_pk: int | None = None) -> list[TaskState]:
    stmt = _task_query()
    if location_pk is not None:
        stmt = stmt.where(TaskRow.location_pk == location_pk)
    if entry_pk is not None:
        stmt = stmt.where(TaskRow.entry_pk == entry_pk)
    if open_only:
        stmt = stmt.where(col(TaskClosureRow.task_pk).is_(None))
    if due_before_us is not None:
        stmt = stmt.where(TaskRow.due_us < due_before_us)
    rows = session.exec(stmt.order_by(col(TaskRow.due_us), col(TaskRow.id))).all()
    return [TaskState(t, c) for t, c in rows]


def locations_by_pk(session: Session, pks: Sequence[int]) -> dict[int, LocationRow]:
    if not pks:
        return {}
    rows = session.exec(select(LocationRow).where(col(LocationRow.id).in_(set(pks)))).all()
    return {r.id: r for r in rows if r.id is not None}


def lots_by_pk(session: Session, pks: Sequence[int]) -> dict[int, LotRow]:
    if not pks:
        return {}
    rows = session.exec(select(LotRow).where(col(LotRow.id).in_(set(pks)))).all()
    return {r.id: r for r in rows if r.id is not None}
