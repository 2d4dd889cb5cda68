"""Date prefix semantics in SQL against a literal model of the FHIR R4 rules."""

from __future__ import annotations

from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from ehr.db import unit_of_work
from ehr.store.criteria import DateMatch, Op, QuantityMatch
from ehr.store.index_writer import IndexValues, replace_index
from ehr.store.repository import insert_resource
from ehr.store.search_sql import matching_pks

MIN, MAX = -(2**62), 2**62
GRID = [MIN, *range(0, 9), MAX]
OPS: list[Op] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "overlap"]


def model(op: Op, rl: int, rh: int, sl: int, sh: int) -> bool:
    """The spec's wording, with ranges [low, high): no algebraic shortcuts."""
    eq = sl <= rl and rh <= sh
    gt = rh > sh  # the range above the search value intersects the resource range
    lt = rl < sl  # the range below the search value intersects the resource range
    return {
        "eq": eq, "ne": not eq, "gt": gt, "lt": lt, "ge": gt or eq, "le": lt or eq,
        "sa": rl >= sh, "eb": rh <= sl, "overlap": rl < sh and rh > sl,
    }[op]


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_date_prefixes_match_the_model(engine: Engine, data: st.DataObject) -> None:
    ranges: dict[int, tuple[int, int]] = {}
    with unit_of_work(engine) as session:
        if not session.execute(text("select count(*) from resource")).scalar_one():
            for i, (low, high) in enumerate(combinations(GRID, 2)):
                pk = insert_resource(session, "Basic", f"b{i}", "{}", 1)
                replace_index(session, pk, "Basic", IndexValues(dates=[("d", low, high)]))
    with unit_of_work(engine, write=False) as session:
        for pk, low, high in session.execute(text("select res_pk, low, high from search_date")):
            ranges[pk] = (low, high)
        op = data.draw(st.sampled_from(OPS))
        sl = data.draw(st.integers(0, 7))
        sh = data.draw(st.integers(sl + 1, 8))
        got = set(matching_pks(session, "Basic", [DateMatch("d", op, sl, sh)], 1000))
    want = {pk for pk, (rl, rh) in ranges.items() if model(op, rl, rh, sl, sh)}
    assert got == want, (op, sl, sh)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_quantity_comparisons_match_the_model(engine: Engine, data: st.DataObject) -> None:
    values = [x / 4 for x in range(-8, 9)]
    with unit_of_work(engine) as session:
        if not session.execute(text("select count(*) from resource")).scalar_one():
            for i, v in enumerate(values):
                pk = insert_resource(session, "Basic", f"q{i}", "{}", 1)
                replace_index(session, pk, "Basic",
                              IndexValues(quantities=[("n", v, None, None, None)]))
        by_pk = dict(session.execute(text("select res_pk, value from search_quantity")).all())
    op = data.draw(st.sampled_from(["eq", "ne", "gt", "lt", "ge", "le", "overlap"]))
    low = data.draw(st.sampled_from(values))
    high = data.draw(st.sampled_from([v for v in values if v >= low]))
    with unit_of_work(engine, write=False) as session:
        got = set(matching_pks(session, "Basic", [QuantityMatch("n", op, low, high)], 1000))
    check = {
        "eq": lambda v: low <= v < high, "ne": lambda v: not (low <= v < high),
        "gt": lambda v: v > low, "lt": lambda v: v < low, "ge": lambda v: v >= low,
        "le": lambda v: v <= low, "overlap": lambda v: low <= v <= high,
    }[op]
    assert got == {pk for pk, v in by_pk.items() if check(v)}
