"""Random sequences of ledger operations keep the balance equal to a model kept here, and
never negative: an operation the model says would overdraw must be refused, unchanged."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinical.ledger.stock import LOCATION, Stock, balance_in, ctx_of
from ehr.clinical.ledger import entries, losses, repository
from ehr.clinical.ledger.draws import draw_problems, record_draw
from ehr.db import unit_of_work
from ehr.errors import Unprocessable
from ehr.instants import now_us

_lots = itertools.count()
# Amounts in mg with up to 4 places; the lot is 50 mg/mL in 2 mL vials (100 mg each).
amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(250), places=4)
operations = st.lists(st.one_of(
    st.tuples(st.just("receive"), st.integers(1, 3)),
    st.tuples(st.just("draw"), amounts),
    st.tuples(st.just("waste"), amounts),
    st.tuples(st.just("loss"), amounts),
    st.tuples(st.just("correct"), st.integers(0, 30)),
), min_size=1, max_size=12)


def _apply(stock: Stock, lot: str, op: str, arg: Any, n: int, target: int | None) -> Any:
    """Run one operation in its own transaction; the entry it appended."""
    nurse = ctx_of("nina")
    if op == "receive":
        return stock.receive(lot, arg, container_ml="2")
    with unit_of_work(stock.engine) as session:
        if op == "draw":
            request = stock.draw_request(lot, arg, n=n)
            if draw_problems(session, request):
                raise Unprocessable("lot holds too little")
            record_draw(session, nurse, request)
            return _last_entry(session, lot)
        if op == "waste":
            return entries.record_waste(session, nurse, stock.protocol, stock.check, entries.Waste(
                LOCATION, lot, drawn_mg=arg, given_mg=Decimal(0), wasted_mg=arg,
                occurred_us=now_us(), witness=stock.witness("doc")))
        if op == "loss":
            return losses.record_loss(session, nurse, stock.protocol, losses.Loss(
                LOCATION, lot, arg, None, now_us(), "count came up short"))[0]
        assert target is not None
        return entries.record_correction(session, ctx_of("doc"), target, "wrong lot")


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_balance_follows_the_model(stock: Stock, ops: list[tuple[str, Any]]) -> None:
    lot = f"P{next(_lots)}"
    first = stock.receive(lot, 1, container_ml="2")  # 100 mg to start with
    model = Decimal(100)
    open_entries = {first.id: Decimal(100)}  # entries not yet corrected, with their change
    for n, (op, arg) in enumerate(ops):
        target = None
        if op == "receive":
            change = Decimal(100 * arg)
        elif op == "correct":
            if not open_entries:
                continue
            target = sorted(open_entries)[arg % len(open_entries)]
            change = -open_entries[target]
        else:
            change = -arg
        allowed = model + change >= 0
        try:
            row = _apply(stock, lot, op, arg, n, target)
        except Unprocessable:
            assert not allowed, (op, arg, model)
        else:
            assert allowed, (op, arg, model)
            assert row.mg == change and row.balance_mg == model + change
            model += change
            if target is not None:
                del open_entries[target]
            elif op != "correct":
                open_entries[row.id] = change
        with unit_of_work(stock.engine, write=False) as session:
            assert balance_in(session, lot) == model >= 0
            location = repository.location(session, LOCATION)
            assert location is not None and location.id is not None
            lot_row = repository.lot(session, location.id, lot)
            assert lot_row is not None and lot_row.id is not None
            history = repository.entries_of_lot(session, lot_row.id)
        assert sum((e.mg for e in history), Decimal(0)) == model


def _last_entry(session: Any, lot: str) -> Any:
    location = repository.location(session, LOCATION)
    assert location is not None and location.id is not None
    lot_row = repository.lot(session, location.id, lot)
    assert lot_row is not None and lot_row.id is not None
    return repository.entries_of_lot(session, lot_row.id)[-1]
