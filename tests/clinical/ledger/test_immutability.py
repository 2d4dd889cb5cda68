"""The database itself refuses to change or remove ledger history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from clinical.ledger.stock import LOCATION, Stock, ctx_of
from ehr.clinical.ledger import counts, losses
from ehr.clinical.ledger.tables import APPEND_ONLY_TABLES
from ehr.db import unit_of_work
from ehr.instants import now_us


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entry SET mg = 0",
    "DELETE FROM ledger_entry",
    "UPDATE ledger_lot SET expiry = '2099-01-01'",
    "DELETE FROM ledger_lot",
])
def test_update_and_delete_are_refused(stock: Stock, engine: Engine, statement: str) -> None:
    stock.receive("L1")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert stock.balance("L1") == 500


def test_every_append_only_table_refuses_delete(stock: Stock, engine: Engine) -> None:
    stock.receive("L1")
    with unit_of_work(engine) as session:
        _, tasks = losses.record_loss(session, ctx_of("cora"), stock.protocol, losses.Loss(
            LOCATION, "L1", Decimal(10), None, now_us(), "vial missing from the safe"))
        assert tasks[0].id is not None
        losses.close_task(session, ctx_of("cora"), tasks[0].id, "DEA-123")
        rec = counts.reconcile(session, stock.protocol, counts.PhysicalCount(
            LOCATION, "ad-hoc", "close", now_us(), [counts.CountLine("L1", mg=Decimal(490))]))
        counts.record_count(session, ctx_of("cora"), rec, None)
    with engine.begin() as conn:
        for table in APPEND_ONLY_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar(), table
            with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
                conn.execute(text(f"DELETE FROM {table}"))


def test_truncate_is_refused_on_postgresql(stock: Stock, engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (a DELETE without WHERE is refused above)")
    stock.receive("L1")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE ledger_entry CASCADE"))
