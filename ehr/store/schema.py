"""Creating and upgrading the database schema."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import SQLModel

from ehr.store import tables  # noqa: F401  (registers the tables on the metadata)


def create_all(engine: Engine) -> None:
    """Create every table directly from the models (tests and first start)."""
    SQLModel.metadata.create_all(engine)


def table_names() -> list[str]:
    """All tables, children before parents (safe order for deletes)."""
    return [t.name for t in reversed(SQLModel.metadata.sorted_tables)]


def refresh_statistics(engine: Engine) -> None:
    """ANALYZE after a bulk load: without statistics the planner picks scans for searches
    (measured 123 ms vs 0.33 ms for an Observation search on 10 k resources)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
