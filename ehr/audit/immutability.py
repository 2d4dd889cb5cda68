"""Database triggers that make the audit trail and the resource history append-only.

PostgreSQL refuses UPDATE, DELETE and TRUNCATE with a trigger function; SQLite refuses UPDATE
and DELETE (a DELETE without WHERE is SQLite's truncate, and triggers fire for it). A database
owner can still drop the triggers: that is what the hash chain and the signed checkpoints are
for, and why the service should connect as a role that owns nothing (docs/audit.md).
"""

from __future__ import annotations

from sqlalchemy import Connection

APPEND_ONLY_TABLES = ("audit_record", "audit_patient", "audit_checkpoint", "resource_version")

# "%%" because the driver formats parameters even when there are none.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ehr_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ehr: %% on %% is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _pg_install(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ehr_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ehr_refuse_change()",
    ]


def _sqlite_install(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'ehr: {op} on {table} is refused: the table is append-only'); END"
        for op in ("UPDATE", "DELETE")
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


def remove(conn: Connection) -> None:
    """Drop the triggers (migrations' downgrade, and test fixtures that empty the database)."""
    if conn.dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS ehr_refuse_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            for op in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
