"""Schema migrations (alembic), run from code: ``ehr db upgrade``, first start, tests.

The revision scripts live in ``migrations/`` at the repository root, next to ``alembic.ini``; the
Docker image copies both and points ``EHR_MIGRATIONS_DIR`` at its copy, because an installed wheel
carries only the ``ehr`` package. The configuration is built here rather than read from
``alembic.ini`` so the code never depends on the working directory.

``migrations/env.py`` takes its comparison and rendering options from :func:`context_options`,
so ``alembic check`` on the command line and :func:`check` here judge drift the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from ehr.config import get_settings
from ehr.db import create_db_engine
from ehr.errors import EhrError
from ehr.store import schema  # noqa: F401  (registers every table on the metadata)

VERSION_TABLE = "alembic_version"
# Arbitrary but fixed: the advisory lock key every ehr process uses for schema upgrades.
_LOCK_KEY = 0x656872_6D6967


class MigrationError(EhrError):
    """The database cannot be brought to the code's schema without a person deciding how."""

    status = 500
    default_code = "exception"


def migrations_dir() -> Path:
    """The ``migrations/`` folder: ``EHR_MIGRATIONS_DIR`` if set, else the repository's."""
    override = os.environ.get("EHR_MIGRATIONS_DIR")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "migrations"
    if not (path / "env.py").is_file():
        raise MigrationError(
            f"alembic migrations not found at {path}; set EHR_MIGRATIONS_DIR to the folder that "
            "holds env.py and versions/"
        )
    return path


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for the project's scripts, optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render SQLModel's ``AutoString`` as a plain ``sa.String`` so scripts need no sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length!r})" if obj.length else "sa.String()"
    return False


def context_options(dialect_name: str) -> dict[str, Any]:
    """Options for ``context.configure`` / ``MigrationContext.configure`` on one dialect."""
    return {
        "target_metadata": SQLModel.metadata,
        "version_table": VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "compare_server_default": False,
        "render_item": render_item,
    }


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); creates SQLite's folder.

    A database made by ``create_all`` before migrations existed has tables but no version row:
    it is stamped at head when it matches the models exactly, and refused otherwise.
    """
    with _connection(target) as conn, _migration_lock(conn):
        if _unversioned_with_tables(conn):
            differences = _compare(conn)
            conn.rollback()
            if differences:
                raise MigrationError(
                    "database has tables but no alembic version, and differs from the models: "
                    f"{differences[:3]!r}; migrate it by hand or start from an empty database"
                )
            command.stamp(alembic_config(conn), "head")
        else:
            command.upgrade(alembic_config(conn), revision)
        conn.commit()


def downgrade(target: Engine | str, revision: str = "base") -> None:
    """Step the database back to ``revision`` (default: empty)."""
    with _connection(target) as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def check(engine: Engine) -> list[Any]:
    """Differences between the database and the models (empty when the schema is current)."""
    with engine.connect() as conn:
        return _compare(conn)


def _compare(conn: Connection) -> list[Any]:
    opts = context_options(conn.dialect.name)
    metadata = opts.pop("target_metadata")
    return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))


def _unversioned_with_tables(conn: Connection) -> bool:
    names = set(inspect(conn).get_table_names())
    # inspect() may open a transaction; end it so alembic starts (and commits) its own.
    conn.rollback()
    return VERSION_TABLE not in names and bool(names & set(SQLModel.metadata.tables))


@contextmanager
def _connection(target: Engine | str) -> Iterator[Connection]:
    if isinstance(target, str):
        engine = create_db_engine(get_settings(), target)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    _ensure_sqlite_folder(target)
    with target.connect() as conn:
        yield conn


def _ensure_sqlite_folder(engine: Engine) -> None:
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, one upgrader at a time: app replicas may all start together.

    A session-level advisory lock, taken and released in transactions of their own so that
    alembic still opens (and commits) the migration transaction itself.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        conn.commit()


@contextmanager
def sqlite_foreign_keys_paused(conn: Connection) -> Iterator[None]:
    """Switch SQLite's foreign keys off while batch mode copies and drops tables.

    With them on, dropping the old copy of a parent table would cascade-delete its children.
    The pragma is ignored inside a transaction, so this only acts on an idle connection; the
    keys are checked before they are switched back on.
    """
    if conn.dialect.name != "sqlite" or conn.in_transaction():
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        # We found the connection idle, so whatever alembic left open is ours to finish; the
        # pragma below would be ignored inside a transaction.
        if conn.in_transaction():
            conn.commit()
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise MigrationError(f"migration left rows with dangling foreign keys: {broken[:5]!r}")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
