"""Reading the whole chain in seq order, in constant memory, while the verifier works.

Keyset batches (``seq > last ORDER BY seq LIMIT n``: an index range scan each, portable, and the
memory is one batch) are fetched as plain DBAPI tuples, skipping SQLAlchemy's row objects, by
one reader thread that stays a batch ahead: the database produces and sends the next batch while
Python hashes the current one. Each batch comes with its records' ``audit_patient`` ids,
joined per seq. The caller's connection and transaction are used, so the whole pass sees one
snapshot.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import Any

from sqlalchemy import Connection

Batch = tuple[list[tuple[Any, ...]], dict[int, str]]

RECORD_COLUMNS = ("seq, time, category, interaction, outcome, status, actor_id, actor_kind, "
                  "rtype, rid, version_id, request_id, purpose, protected, body, prev_hash, hash")


def _statements(conn: Connection) -> tuple[str, str]:
    def p(name: str) -> str:
        return f"%({name})s" if conn.dialect.paramstyle == "pyformat" else f":{name}"

    records = (f"SELECT {RECORD_COLUMNS} FROM audit_record WHERE seq > {p('after')} "
               f"ORDER BY seq LIMIT {p('n')}")
    # One row per record, the ids joined by a space (FHIR ids cannot hold one): fetched and
    # turned into a dict at C speed, where a row per patient cost more than the hashing.
    agg = "string_agg" if conn.dialect.name == "postgresql" else "group_concat"
    patients = (f"SELECT seq, {agg}(patient_id, ' ') FROM audit_patient "
                f"WHERE seq > {p('after')} AND seq <= {p('last')} GROUP BY seq")
    return records, patients


def batches(conn: Connection, size: int, after: int = 0) -> Generator[Batch, None, None]:
    """Yield (records, patients by seq) for ``seq > after`` until the chain ends; close the
    iterator to stop early."""
    records_sql, patients_sql = _statements(conn)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    ahead: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Batch | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # psycopg would prepare the statements server-side after a few runs: that saves planning
    # (microseconds per batch) but costs Python work per row, measurably more here.
    options: dict[str, Any] = {"prepare": False} if conn.dialect.name == "postgresql" else {}

    def read() -> None:
        cursor = dbapi.cursor()
        nonlocal after
        try:
            while not stop.is_set():
                cursor.execute(records_sql, {"after": after, "n": size}, **options)
                rows: list[tuple[Any, ...]] = list(cursor.fetchall())
                if not rows:
                    put(None)
                    return
                last = rows[-1][0]
                cursor.execute(patients_sql, {"after": after, "last": last}, **options)
                patients: dict[int, str] = dict(cursor.fetchall())
                if not put((rows, patients)):
                    return
                after = last
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            cursor.close()

    reader = threading.Thread(target=read, name="audit-verify-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
