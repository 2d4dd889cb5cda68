"""Drawing doses: the contract the dosing gate calls (``draw_problems`` then ``record_draw``)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from clinical.ledger.stock import LOCATION, Stock, ctx_of, put_location
from ehr.clinical.ledger import repository
from ehr.clinical.ledger.draws import DrawRequest, draw_location, draw_problems, record_draw
from ehr.clinical.ledger.locations import Registration, register
from ehr.config import Settings
from ehr.context import SYSTEM
from ehr.db import unit_of_work
from ehr.errors import Unprocessable


def test_a_draw_lowers_the_balance_and_names_patient_and_performer(stock: Stock) -> None:
    stock.receive("L1")  # 1 vial x 10 mL x 50 mg/mL = 500 mg
    assert stock.balance("L1") == Decimal("500")
    assert stock.draw(stock.draw_request("L1", "37.5")) == []
    assert stock.balance("L1") == Decimal("462.5")
    with unit_of_work(stock.engine, write=False) as session:
        entry = next(e for e in repository.entries(session, repository.EntryFilter())
                     if e.kind == "administration")
    assert (entry.mg, entry.ml, entry.balance_mg) == (Decimal("-37.5"), Decimal("-0.75"),
                                                       Decimal("462.5"))
    assert (entry.patient, entry.actor_id) == ("Patient/p1", "nina")
    assert entry.administration == "MedicationAdministration/ma-L1-1"


def test_every_problem_is_listed(stock: Stock) -> None:
    yesterday = dt.date.today() - dt.timedelta(days=1)
    stock.receive("OLD", expiry=yesterday)
    problems = stock.draw(stock.draw_request("OLD", "600", ml=Decimal("1")))
    assert len(problems) == 3, problems
    assert any("expired" in p for p in problems)
    assert any("does not match" in p for p in problems)  # 1 mL is not 600 mg at 50 mg/mL
    assert any("holds 500.0000 mg" in p for p in problems)
    assert stock.balance("OLD") == Decimal("500")


def test_unknown_location_or_lot(stock: Stock) -> None:
    stock.receive("L1")
    other = DrawRequest("elsewhere", "L1", Decimal(10), None, "MedicationAdministration/x",
                        "Patient/p", "nina", "Nina", 0)
    assert "not a registered" in stock.draw(other)[0]
    assert "not stocked" in stock.draw(stock.draw_request("NOPE", "10"))[0]


def test_record_draw_refuses_an_overdraw_even_without_the_check(stock: Stock) -> None:
    stock.receive("L1")
    with pytest.raises(Unprocessable, match=r"holds 500\.0000 mg"), \
            unit_of_work(stock.engine) as session:
        record_draw(session, ctx_of("nina"), stock.draw_request("L1", "500.0001"))
    assert stock.balance("L1") == Decimal("500")


def test_the_balance_row_refuses_a_negative_balance(stock: Stock, engine: Engine) -> None:
    stock.receive("L1")
    with pytest.raises(Exception, match=r"(?i)check|constraint"), engine.begin() as conn:
        conn.execute(text("UPDATE ledger_balance SET mg = -1"))


def test_draw_location(stock: Stock, engine: Engine, settings: Settings) -> None:
    with unit_of_work(engine) as session:
        assert draw_location(session, "Location/x") == "x"
        assert draw_location(session, None) == LOCATION  # the only one registered
    put_location(engine, settings, "clinic-2")
    with unit_of_work(engine) as session:
        register(session, SYSTEM, Registration("clinic-2", "BP1234563"))
    with unit_of_work(engine) as session:
        assert draw_location(session, None) is None


def test_twenty_concurrent_draws_against_ten_doses(stock: Stock) -> None:
    """Separate threads, sessions and transactions; exactly 10 succeed, the balance ends at 0."""
    stock.receive("L10", container_ml="1")  # 1 mL x 50 mg/mL: ten doses of 5 mg
    start = threading.Barrier(20)

    def one(n: int) -> bool:
        start.wait()
        request = stock.draw_request("L10", "5", n=n)
        with unit_of_work(stock.engine) as session:
            if draw_problems(session, request):
                return False
            record_draw(session, ctx_of("nina"), request)
        return True

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert results.count(True) == 10
    assert stock.balance("L10") == Decimal(0)
    with unit_of_work(stock.engine, write=False) as session:
        location = repository.location(session, LOCATION)
        assert location is not None and location.id is not None
        lot = repository.lot(session, location.id, "L10")
        assert lot is not None and lot.id is not None
        draws = [e for e in repository.entries_of_lot(session, lot.id)
                 if e.kind == "administration"]
    assert len(draws) == 10
    # Each draw saw the previous one's balance: the snapshots step down by 5 mg to 0.
    assert sorted(e.balance_mg for e in draws) == [Decimal(5 * i) for i in range(10)]
