"""Alembic environment for ehr.

Where the database comes from, first match wins:
1. ``config.attributes["connection"]``: an open connection handed in by code
   (``ehr.store.migrate.upgrade``); the caller owns it.
2. ``alembic -x url=...`` on the command line.
3. ``EHR_DATABASE_URL`` / the default in ``ehr.config.Settings``.

Comparison and rendering options come from ``ehr.store.migrate.context_options`` so that the
command line's ``alembic check`` and the test suite's drift check agree.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

import ehr.audit.tables
import ehr.auth.access_tables
import ehr.auth.tables
import ehr.auth.web_sessions
import ehr.clinical.ledger.tables
import ehr.store.export_jobs  # noqa: F401  (registers the tables on the metadata)
from ehr.config import Settings
from ehr.db import create_db_engine, normalise_url
from ehr.store import migrate

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("url")
    return normalise_url(given or Settings().database_url)


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migrate.context_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **migrate.context_options(connection.dialect.name))
    with migrate.sqlite_foreign_keys_paused(connection), context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    engine = create_db_engine(Settings(), _url())
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
