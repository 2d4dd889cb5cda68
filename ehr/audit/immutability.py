"""Database triggers that make the audit trail and the resource history append-only.

PostgreSQL refuses UPDATE, DELETE and TRUNCATE with a trigger function; SQLite refuses UPDATE
and DELETE (a DELETE without WHERE is SQLite's truncate, and triggers fire for it). A database
owner can still drop the triggers: that is what the hash chain and the signed checkpoints are
for, and why the service should connect as a role that owns nothing (docs/audit.md).

``audit_pending`` holds records not yet chained: nothing may change them, and a row may be
deleted only once its record is in ``audit_record`` with the same body (the sealer inserts the
record, then deletes the row, in one transaction). So a pending record leaves its table only
into the chain, verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

APPEND_ONLY_TABLES = ("audit_record", "audit_patient", "audit_checkpoint", "resource_version")
PENDING_TABLE = "audit_pending"

# "%%" because the driver formats parameters even when there are none.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ehr_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ehr: %% on %% is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# One check per DELETE statement (a transition table), not per row: the sealer deletes batches.
_PG_SEALED_ONLY = """
CREATE OR REPLACE FUNCTION ehr_pending_leaves_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stray bigint;
BEGIN
    SELECT g.id INTO stray FROM gone g WHERE NOT EXISTS (
        SELECT 1 FROM audit_record r
        WHERE r.pending_id = g.id AND r.body = g.body_head || r.seq::text || g.body_tail)
    LIMIT 1;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'ehr: DELETE on audit_pending is refused: record %% is not in the chain',
            stray USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$
"""

_SQLITE_SEALED_ONLY = f"""
CREATE TRIGGER {PENDING_TABLE}_sealed_only BEFORE DELETE ON {PENDING_TABLE}
WHEN NOT EXISTS (SELECT 1 FROM audit_record r WHERE r.pending_id = OLD.id
                 AND r.body = OLD.body_head || r.seq || OLD.body_tail)
BEGIN SELECT RAISE(ABORT, 'ehr: DELETE on audit_pending is refused: not in the chain'); END
"""


def _pg_install(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ehr_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ehr_refuse_change()",
    ]


def _sqlite_install(table: str, ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'ehr: {op} on {table} is refused: the table is append-only'); END"
        for op in ops
    ]


def install(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            for statement in _pg_install(table):
                conn.exec_driver_sql(statement)
    else:
        for table in APPEND_ONLY_TABLES:
            for statement in _sqlite_install(table):
                conn.exec_driver_sql(statement)
    if sa.inspect(conn).has_table(PENDING_TABLE):
        install_pending(conn)


def install_pending(conn: Connection) -> None:
    """The pending table's triggers (``ehr_refuse_change`` must exist on PostgreSQL)."""
    t = PENDING_TABLE
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_SEALED_ONLY)
        for statement in (
            f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION ehr_refuse_change()",
            f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ehr_refuse_change()",
            f"CREATE TRIGGER {t}_sealed_only AFTER DELETE ON {t} REFERENCING OLD TABLE AS gone "
            "FOR EACH STATEMENT EXECUTE FUNCTION ehr_pending_leaves_sealed()",
        ):
            conn.exec_driver_sql(statement)
    else:
        for statement in [*_sqlite_install(t, ("UPDATE",)), _SQLITE_SEALED_ONLY]:
            conn.exec_driver_sql(statement)


def remove(conn: Connection) -> None:
    """Drop the triggers (migrations' downgrade, and test fixtures that empty the database)."""
    if sa.inspect(conn).has_table(PENDING_TABLE):
        remove_pending(conn)
    if conn.dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        # Other packages' append-only tables (``install_tables``) may still use the function.
        conn.exec_driver_sql(_PG_DROP_UNUSED_FUNCTION)
    else:
        for table in APPEND_ONLY_TABLES:
            for op in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


# -- the same protection for tables above the audit layer (e.g. the controlled-substance ledger)

_PG_DROP_UNUSED_FUNCTION = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgfoid = to_regproc('ehr_refuse_change')) THEN
        DROP FUNCTION IF EXISTS ehr_refuse_change();
    END IF;
END $$
"""


def install_tables(conn: Connection, tables: Sequence[str]) -> None:
    """Make ``tables`` append-only with the audit trail's triggers (their owner's migration
    calls this; nothing here needs to know them)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        statements = [s for table in tables for s in _pg_install(table)]
    else:
        statements = [s for table in tables for s in _sqlite_install(table)]
    for statement in statements:
        conn.exec_driver_sql(statement)


def remove_tables(conn: Connection, tables: Sequence[str]) -> None:
    for table in tables:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            for op in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


def other_tables(conn: Connection) -> list[str]:
    """Tables protected through ``install_tables``, read from the database itself (so that
    a fixture emptying every table can lift and restore them without importing their owner)."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = c.relname || '_append_only'").all()
    else:
        rows = conn.exec_driver_sql(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' "
            "AND name = tbl_name || '_no_delete'").all()
    return sorted(r[0] for r in rows if r[0] not in APPEND_ONLY_TABLES)


def remove_pending(conn: Connection) -> None:
    t = PENDING_TABLE
    if conn.dialect.name == "postgresql":
        for name in ("no_update", "no_truncate", "sealed_only"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_{name} ON {t}")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS ehr_pending_leaves_sealed()")
    else:
        for name in ("no_update", "sealed_only"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_{name}")
