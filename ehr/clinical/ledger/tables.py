"""Database tables of the Schedule III controlled-substance ledger.

Every table that records what happened (lots, entries, counts, tasks and their closures) is
append-only: the database refuses UPDATE and DELETE (``ehr.audit.immutability``), so a
mistake is corrected by a compensating entry that names the corrected one. Two tables hold
state rather than history: the registered locations, and one balance row per lot, which is
the row every draw locks so that concurrent draws queue instead of overdrawing.

Quantities are exact decimals with 4 places: NUMERIC on PostgreSQL, and on SQLite (whose
NUMERIC is a float) an integer count of ten-thousandths.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Imported for its side effect as well: the constraint naming convention on the shared metadata.
from ehr.store.tables import BigKey

PLACES = 4
_SCALE = Decimal(1).scaleb(-PLACES)


class Quantity(sa.types.TypeDecorator[Decimal]):
    """An exact decimal quantity (mg or mL), never a float on any backend."""

    impl = sa.Numeric(18, PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(18, PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(_SCALE)
        return int(exact.scaleb(PLACES)) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-PLACES).quantize(_SCALE)
        return Decimal(value).quantize(_SCALE)


def _quantity(nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(Quantity(), nullable=nullable))


def _ref(target: str, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(BigKey, sa.ForeignKey(target), nullable=nullable,
                                     index=index))


def _text(length: int | None = None, nullable: bool = True) -> Any:
    kind: Any = sa.String(length) if length else sa.Text()
    return Field(default=None, sa_column=sa.Column(kind, nullable=nullable))


def _time(nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(sa.BigInteger(), nullable=nullable))


class LocationRow(SQLModel, table=True):
    """A registered location: a FHIR Location with the DEA registration it stocks under."""

    __tablename__ = "ledger_location"
    __table_args__ = (sa.UniqueConstraint("location_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    location_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    address: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    dea_number: str = Field(sa_column=sa.Column(sa.String(9), nullable=False))
    registered_us: int = _time()
    registered_by: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    updated_us: int = _time()


class LotRow(SQLModel, table=True):
    """One lot of one product at one location, as its first receipt described it."""

    __tablename__ = "ledger_lot"
    __table_args__ = (sa.UniqueConstraint("location_pk", "lot_number"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    location_pk: int = _ref("ledger_location.id")
    lot_number: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    drug: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    rxnorm: str | None = _text(16)
    ndc: str | None = _text(16)
    form: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    strength: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    concentration: Decimal = _quantity()  # mg per mL
    container_ml: Decimal = _quantity()
    expiry: dt.date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    created_us: int = _time()


class BalanceRow(SQLModel, table=True):
    """The running balance of a lot: locked FOR UPDATE by every entry that moves stock."""

    __tablename__ = "ledger_balance"
    __table_args__ = (sa.CheckConstraint("mg >= 0 AND ml >= 0", name="not_negative"),)

    lot_pk: int = Field(sa_column=sa.Column(BigKey, sa.ForeignKey("ledger_lot.id"),
                                            primary_key=True, autoincrement=False))
    mg: Decimal = _quantity()
    ml: Decimal = _quantity()
    last_entry: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    updated_us: int = _time()


class EntryRow(SQLModel, table=True):
    """One movement of stock (``mg``/``ml`` signed: receipts add, everything else removes),
    with the lot's balance after it. ``detail`` holds the kind's document fields as JSON
    (supplier and invoice, drawn/given/wasted, Form 41 method, loss circumstances)."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        sa.UniqueConstraint("corrects_id"),
        sa.Index("ix_ledger_entry_location_time", "location_pk", "occurred_us", "id"),
        sa.Index("ix_ledger_entry_lot", "lot_pk", "id"),
        sa.Index("ix_ledger_entry_administration", "administration"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    location_pk: int = _ref("ledger_location.id")
    lot_pk: int = _ref("ledger_lot.id")
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    mg: Decimal = _quantity()
    ml: Decimal = _quantity()
    balance_mg: Decimal = _quantity()
    balance_ml: Decimal = _quantity()
    occurred_us: int = _time()
    recorded_us: int = _time()
    actor_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    actor_display: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    request_id: str | None = _text(64)
    patient: str | None = _text(80)
    administration: str | None = _text(100)
    witness_id: str | None = _text(128)
    witness_display: str | None = _text(200)
    witness2_id: str | None = _text(128)
    witness2_display: str | None = _text(200)
    corrects_id: int | None = _ref("ledger_entry.id", nullable=True)
    reason: str | None = _text()
    detail: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))


class CountRow(SQLModel, table=True):
    """A physical inventory at a location (initial, biennial or ad hoc)."""

    __tablename__ = "ledger_count"
    __table_args__ = (sa.Index("ix_ledger_count_location_time", "location_pk", "counted_us"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    location_pk: int = _ref("ledger_location.id")
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    timing: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    counted_us: int = _time()
    recorded_us: int = _time()
    actor_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    actor_display: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    request_id: str | None = _text(64)
    note: str | None = _text()
    variance: bool = Field(default=False, nullable=False)
    flag: str | None = _text(100)


class CountLineRow(SQLModel, table=True):
    """One lot's count, with the book balance it was compared with."""

    __tablename__ = "ledger_count_line"

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    count_pk: int = _ref("ledger_count.id", index=True)
    lot_pk: int = _ref("ledger_lot.id")
    method: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    containers: int | None = Field(default=None, sa_column=sa.Column(sa.Integer()))
    counted_mg: Decimal = _quantity()
    counted_ml: Decimal = _quantity()
    expected_mg: Decimal = _quantity()
    expected_ml: Decimal = _quantity()
    variance_mg: Decimal = _quantity()
    variance_ml: Decimal = _quantity()


class TaskRow(SQLModel, table=True):
    """A follow-up a theft or loss report owes (DEA notice, Form 106) with its deadline."""

    __tablename__ = "ledger_task"

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    entry_pk: int = _ref("ledger_entry.id", index=True)
    location_pk: int = _ref("ledger_location.id")
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    description: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    due_us: int = _time()
    created_us: int = _time()


class TaskClosureRow(SQLModel, table=True):
    """A task's closure; its key makes a second closure of the same task fail."""

    __tablename__ = "ledger_task_closure"

    task_pk: int = Field(sa_column=sa.Column(BigKey, sa.ForeignKey("ledger_task.id"),
                                             primary_key=True, autoincrement=False))
    closed_us: int = _time()
    reference: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    note: str | None = _text()
    actor_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    actor_display: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


# Refuse UPDATE/DELETE (and TRUNCATE on PostgreSQL) on these; see ehr.audit.immutability.
APPEND_ONLY_TABLES = ("ledger_lot", "ledger_entry", "ledger_count", "ledger_count_line",
                      "ledger_task", "ledger_task_closure")
