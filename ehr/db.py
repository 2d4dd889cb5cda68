"""Engines and the unit of work: one database transaction per request.

SQLite runs in WAL mode with foreign keys on. Its driver's implicit transactions are switched off
so that a writing unit of work can open with ``BEGIN IMMEDIATE``: taking the write lock up front
means two concurrent writers queue on ``busy_timeout`` instead of failing when a read snapshot
cannot be upgraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from ehr.config import Settings

_BEGIN_OPTION = "ehr_sqlite_begin"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and pin the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(settings: Settings, url: str | None = None) -> Engine:
    url = normalise_url(url or settings.database_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: str, settings: Settings) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    busy = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def unit_of_work(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One transaction: committed when the block ends normally, rolled back on any exception.

    Services inside only flush; the owner of the block (a request, a CLI command) commits.
    """
    bind: Engine = engine
    if write and is_sqlite(engine):
        bind = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    session = Session(bind=bind, expire_on_commit=False, autoflush=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
