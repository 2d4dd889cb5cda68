"""Keyset paging: pages stay consistent while resources change between requests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.db import unit_of_work
from ehr.errors import BadRequest
from ehr.store.criteria import SortKey, TokenMatch
from ehr.store.index_writer import IndexValues, delete_index, replace_index
from ehr.store.repository import bump_current, insert_resource
from ehr.store.search_sql import SearchPage, execute_search

GROUP = TokenMatch("group", "g")


def _add(engine: Engine, rid: str, rank: int | None, last_updated: int = 1) -> int:
    with unit_of_work(engine) as session:
        pk = insert_resource(session, "Basic", rid, "{}", last_updated)
        values = IndexValues(tokens=[("group", None, "g", None)])
        if rank is not None:
            values.quantities.append(("rank", float(rank), None, None, None))
        replace_index(session, pk, "Basic", values)
    return pk


def _delete(engine: Engine, rid: str) -> None:
    with unit_of_work(engine) as session:
        pk = session.execute(sa.text("select pk from resource where rid = :r"),
                             {"r": rid}).scalar_one()
        bump_current(session, pk, 1, content=None, last_updated=2, deleted=True)
        delete_index(session, pk)


def _page(engine: Engine, sort: Sequence[SortKey], cursor: str | None, count: int = 3,
          restriction: Callable[[Any], Any] | None = None) -> SearchPage:
    with unit_of_work(engine, write=False) as session:
        return execute_search(session, "Basic", [GROUP], count=count, cursor=cursor, sort=sort,
                              with_total=True, restriction=restriction)


def _walk(engine: Engine, sort: Sequence[SortKey],
          between: Callable[[int], None] = lambda _: None) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for step in range(50):
        page = _page(engine, sort, cursor)
        seen.extend(r.rid for r in page.rows)
        between(step)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("paging did not terminate")


SORTS = [[], [SortKey("rank", "quantity")], [SortKey("rank", "quantity", True)],
         [SortKey("_id", "id", True)], [SortKey("_lastUpdated", "lastUpdated")]]


@pytest.mark.parametrize("sort", SORTS, ids=lambda s: ",".join(k.param for k in s) or "pk")
def test_paging_survives_inserts_and_deletes(engine: Engine, sort: list[SortKey]) -> None:
    for i in range(10):
        _add(engine, f"r{i:02d}", None if i % 4 == 0 else (i * 7) % 5, last_updated=i)
    everything = _walk(engine, sort)
    assert sorted(everything) == [f"r{i:02d}" for i in range(10)]
    assert len(everything) == len(set(everything))

    def churn(step: int) -> None:
        if step == 0:
            _delete(engine, everything[5])
            _add(engine, f"new{step}", 1, last_updated=100)
        if step == 1:
            _add(engine, f"new{step}", None, last_updated=101)

    second = _walk(engine, sort, churn)
    assert len(second) == len(set(second)), "a resource was served twice"
    unchanged = [r for r in everything if r != everything[5]]
    assert [r for r in second if r in unchanged] == unchanged, "order changed or rows skipped"


def test_missing_values_sort_last_both_ways(engine: Engine) -> None:
    for rid, rank in (("a", 2), ("b", None), ("c", 1), ("d", None), ("e", 3)):
        _add(engine, rid, rank)
    asc = _walk(engine, [SortKey("rank", "quantity")])
    desc = _walk(engine, [SortKey("rank", "quantity", True)])
    assert asc[:3] == ["c", "a", "e"] and set(asc[3:]) == {"b", "d"}
    assert desc[:3] == ["e", "a", "c"] and set(desc[3:]) == {"b", "d"}


def test_previous_links_walk_back(engine: Engine) -> None:
    for i in range(8):
        _add(engine, f"r{i}", i % 3)
    sort = [SortKey("rank", "quantity", True)]
    forward = _walk(engine, sort)
    first = _page(engine, sort, None)
    assert first.prev_cursor is None
    second = _page(engine, sort, first.next_cursor)
    third = _page(engine, sort, second.next_cursor)
    assert third.next_cursor is None
    back = _page(engine, sort, third.prev_cursor)
    assert [r.rid for r in back.rows] == [r.rid for r in second.rows]
    back_again = _page(engine, sort, back.prev_cursor)
    assert [r.rid for r in back_again.rows] == forward[:3]
    assert back_again.prev_cursor is None
    assert back_again.next_cursor is not None


def test_total_and_count_zero(engine: Engine) -> None:
    for i in range(4):
        _add(engine, f"r{i}", i)
    page = _page(engine, [], None, count=0)
    assert (page.rows, page.total, page.next_cursor) == ([], 4, None)
    hidden = _page(engine, [], None, restriction=lambda res: res.c.rid != "r1")
    assert hidden.total == 3 and "r1" not in {r.rid for r in hidden.rows}


def test_bad_or_foreign_cursor_is_a_bad_request(engine: Engine) -> None:
    for i in range(5):
        _add(engine, f"r{i}", i)
    page = _page(engine, [SortKey("rank", "quantity")], None)
    assert page.next_cursor is not None
    with pytest.raises(BadRequest):
        _page(engine, [], page.next_cursor)
    with pytest.raises(BadRequest):
        _page(engine, [], "%%%not-base64")
    forged = base64.urlsafe_b64encode(json.dumps(["x", "n", 0, [1]]).encode()).decode()
    with pytest.raises(BadRequest):
        _page(engine, [], forged)
