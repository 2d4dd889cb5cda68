"""Fixtures for search tests: store resources with their index rows, then run queries."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import Engine

from ehr.db import unit_of_work
from ehr.fhir.search import index_values, parse_search
from ehr.store.index_writer import replace_index
from ehr.store.repository import insert_resource
from ehr.store.search_sql import SearchPage, execute_search, fetch_includes

Store = Callable[..., int]
Search = Callable[..., list[str]]
_clock = count(1_600_000_000_000_000, 1_000_000)


@pytest.fixture
def store(engine: Engine) -> Store:
    """store(resource_dict[, last_updated]) -> pk; indexes it like the write path does."""

    def _store(resource: dict[str, Any], last_updated: int | None = None) -> int:
        rtype, rid = resource["resourceType"], resource["id"]
        with unit_of_work(engine) as session:
            pk = insert_resource(session, rtype, rid, json.dumps(resource),
                                 last_updated or next(_clock))
            replace_index(session, pk, rtype, index_values(rtype, resource))
        return pk

    return _store


def run_query(engine: Engine, rtype: str | None, query: str, **kw: Any) -> SearchPage:
    request = parse_search(rtype, parse_qsl(query, keep_blank_values=True), strict=True,
                           default_count=kw.pop("default_count", 100), max_count=1000)
    with unit_of_work(engine, write=False) as session:
        return execute_search(session, rtype, request.criteria, count=request.count,
                              cursor=request.cursor, sort=request.sort, with_total=True, **kw)


@pytest.fixture
def page(engine: Engine) -> Callable[..., SearchPage]:
    """page(rtype, query, **kw) -> the SearchPage (rows, total, cursors)."""

    def _page(rtype: str | None, query: str, **kw: Any) -> SearchPage:
        return run_query(engine, rtype, query, **kw)

    return _page


@pytest.fixture
def search(engine: Engine) -> Search:
    """search(rtype, "a=b&c=d") -> matching ids in page order."""

    def _search(rtype: str | None, query: str, **kw: Any) -> list[str]:
        return [r.rid for r in run_query(engine, rtype, query, **kw).rows]

    return _search


@pytest.fixture
def included(engine: Engine) -> Search:
    """included(rtype, query) -> 'Type/id' of the _include/_revinclude resources."""

    def _included(rtype: str, query: str, **kw: Any) -> list[str]:
        request = parse_search(rtype, parse_qsl(query), strict=True, default_count=100,
                               max_count=1000)
        with unit_of_work(engine, write=False) as session:
            page = execute_search(session, rtype, request.criteria, count=request.count,
                                  cursor=None, sort=request.sort, with_total=False, **kw)
            extra = fetch_includes(session, page.rows, request.includes, request.revincludes,
                                   **kw)
        return sorted(f"{r.rtype}/{r.rid}" for r in extra)

    return _included
