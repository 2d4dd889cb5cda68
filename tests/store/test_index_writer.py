from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.db import unit_of_work
from ehr.store.index_writer import IndexValues, delete_index, replace_index
from ehr.store.repository import insert_resource
from ehr.store.tables import INDEX_TABLES


def _counts(engine: Engine, pk: int) -> dict[str, int]:
    with unit_of_work(engine, write=False) as session:
        return {
            model.__tablename__: session.execute(  # type: ignore[union-attr]
                sa.select(sa.func.count()).select_from(model.__table__)  # type: ignore[union-attr]
                .where(model.__table__.c.res_pk == pk)  # type: ignore[union-attr]
            ).scalar_one()
            for model in INDEX_TABLES
        }


def test_replace_rewrites_and_delete_clears(engine: Engine) -> None:
    values = IndexValues(
        strings=[("name", "smith", "Smith"), ("name", "smith", "Smith")],
        tokens=[("code", "s", "c", "text")],
        dates=[("date", 1, 2)],
        references=[("subject", "Patient", "p", None)],
        quantities=[("value", 1.5, "u", "mg", "mg")],
        uris=[("url", "http://x")],
    )
    with unit_of_work(engine) as session:
        pk = insert_resource(session, "Observation", "o1", "{}", 1)
        replace_index(session, pk, "Observation", values)
    assert _counts(engine, pk) == {"search_string": 1, "search_token": 1, "search_date": 1,
                                   "search_reference": 1, "search_quantity": 1,
                                   "search_uri": 1}
    with unit_of_work(engine) as session:
        replace_index(session, pk, "Observation",
                      IndexValues(tokens=[("code", "s", "c", None), ("code", "s", "d", None)]))
    assert _counts(engine, pk)["search_token"] == 2
    assert _counts(engine, pk)["search_string"] == 0
    with unit_of_work(engine) as session:
        delete_index(session, pk)
    assert set(_counts(engine, pk).values()) == {0}
