"""Counts reconcile per lot against the book balance at the count's time."""

from __future__ import annotations

from decimal import Decimal

from clinical.ledger.stock import LOCATION, Stock, ctx_of
from ehr.clinical.flags import flag_kind
from ehr.clinical.ledger import counts
from ehr.db import unit_of_work
from ehr.instants import now_us


def _reconcile(stock: Stock, kind: str, at: int, *lines: counts.CountLine
               ) -> counts.Reconciliation:
    with unit_of_work(stock.engine) as session:
        rec = counts.reconcile(session, stock.protocol, counts.PhysicalCount(
            LOCATION, kind, "opening", at, list(lines)))
        counts.record_count(session, ctx_of("cora"), rec, None)
    return rec


def test_the_book_balance_is_taken_at_the_count_time(stock: Stock) -> None:
    stock.receive("L1")
    counted_at = now_us()
    assert stock.draw(stock.draw_request("L1", "100")) == []  # after the count was taken
    rec = _reconcile(stock, "ad-hoc", counted_at, counts.CountLine("L1", ml=Decimal(10)))
    assert rec.variances == []
    assert rec.lines[0].expected_mg == Decimal(500)


def test_a_full_inventory_counts_an_omitted_lot_as_zero(stock: Stock) -> None:
    stock.receive("L1")
    stock.receive("L2")
    rec = _reconcile(stock, "biennial", now_us(), counts.CountLine("L1", mg=Decimal(500)))
    assert [(v.lot.lot_number, v.variance_mg) for v in rec.variances] == [("L2", -500)]
    flag = counts.variance_flag(rec, ctx_of("cora").actor)
    assert flag is not None and flag_kind(flag) == counts.VARIANCE_KIND
    assert flag["subject"] == {"reference": f"Location/{LOCATION}"}
    # An ad hoc count covers only what it lists.
    assert _reconcile(stock, "ad-hoc", now_us(),
                      counts.CountLine("L1", mg=Decimal(500))).variances == []
