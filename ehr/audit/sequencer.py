"""The one serial point of the audit trail: numbering and chaining records (sealing).

Requests do not take the chain's lock. At commit a request inserts its records into
``audit_pending`` (``enqueue``): unnumbered, and committed or rolled back with the request.
Sealing (``seal``) runs in a transaction of its own, a few milliseconds later, for a batch:

1. lock the ``audit_head`` row (``SELECT ... FOR UPDATE``): seals run one at a time, and each
   starts from the head the previous one committed;
2. read the pending rows in id order. This statement starts after the lock was granted, so
   under READ COMMITTED it sees every row committed before that moment and none that an
   earlier seal removed (that seal committed before it released the lock);
3. number them from the head, join each body around its number (``canonical.split``), chain
   the hashes, insert them into ``audit_record`` (naming their pending id) and
   ``audit_patient``, delete them from ``audit_pending`` (a trigger lets a row go only when its
   record, verbatim, is in the chain), move the head, and sign a checkpoint when one is due;
4. commit.

A record committed after step 2 is taken by the next seal; one whose request rolled back never
existed. So every committed record is sealed exactly once, and the chain has no forks or gaps.
On SQLite the writing transaction holds the database's lock, so the same steps run inside the
request's own transaction (``append``), as they do for the CLI and when
``EHR_AUDIT_SEAL_INTERVAL_MS`` is 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlmodel import Session

from ehr.audit.canonical import split
from ehr.audit.tables import (
    AuditCheckpointRow,
    AuditHeadRow,
    AuditPatientRow,
    AuditPendingRow,
    AuditRecordRow,
)

RECORD = AuditRecordRow.__table__  # type: ignore[attr-defined]
PATIENT = AuditPatientRow.__table__  # type: ignore[attr-defined]
HEAD = AuditHeadRow.__table__  # type: ignore[attr-defined]
CHECKPOINT = AuditCheckpointRow.__table__  # type: ignore[attr-defined]
PENDING = AuditPendingRow.__table__  # type: ignore[attr-defined]

Signer = Callable[[dict[str, Any]], str]

# The columns a record carries from the request to the chain unchanged.
COLUMNS = ("time", "category", "interaction", "outcome", "status", "actor_id", "actor_kind",
           "rtype", "rid", "version_id", "request_id", "purpose", "protected")
SEAL_BATCH = 1000
_PENDING_COLUMNS = (*COLUMNS, "body_head", "body_tail", "patients")
_PG_TAKE = "SELECT id, body_head, body_tail FROM audit_pending ORDER BY id LIMIT %s"
# Python sends only what it computed: the pending ids in chain order, the first number and the
# hashes (64 hex characters each, one text); the database joins each body around its number
# itself (the DELETE trigger checks that join) and copies the columns and patients. Plain text
# parameters, not arrays of bodies: the driver escapes arrays element by element in Python.
_PG_NUMBERED = (
    "SELECT u.n, u.id, %(first)s::bigint + u.n - 1 AS seq "
    "FROM unnest(string_to_array(%(ids)s, ',')::bigint[]) WITH ORDINALITY AS u(id, n)")
_PG_SEAL = (
    f"WITH u AS ({_PG_NUMBERED}), sealed AS ("
    f"INSERT INTO audit_record ({', '.join(COLUMNS)}, seq, body, prev_hash, hash, pending_id) "
    f"SELECT {', '.join('p.' + c for c in COLUMNS)}, u.seq, "
    "p.body_head || u.seq::text || p.body_tail, "
    "CASE WHEN u.n = 1 THEN %(prev)s ELSE substr(%(hashes)s, (u.n::int - 2) * 64 + 1, 64) END, "
    "substr(%(hashes)s, (u.n::int - 1) * 64 + 1, 64), p.id "
    "FROM u JOIN audit_pending p ON p.id = u.id ORDER BY u.n RETURNING seq, pending_id) "
    "INSERT INTO audit_patient (seq, patient_id) SELECT DISTINCT s.seq, j.value "
    "FROM sealed s JOIN audit_pending p ON p.id = s.pending_id "
    "CROSS JOIN LATERAL json_array_elements_text(p.patients::json) AS j(value) "
    "WHERE p.patients IS NOT NULL")
_PG_SEALED = "DELETE FROM audit_pending WHERE id = ANY(string_to_array(%s, ',')::bigint[])"
_PG_LOCK_HEAD = ("SELECT seq, hash, checkpoint_seq, checkpoint_time FROM audit_head "
                 "WHERE id = 1 FOR UPDATE")
# The delete's trigger finds each record in the chain: the seal statement ran before this one.
_PG_SEALED_AND_HEAD = (
    "WITH gone AS (DELETE FROM audit_pending "
    "WHERE id = ANY(string_to_array(%(ids)s, ',')::bigint[])) "
    "UPDATE audit_head SET seq = %(seq)s, hash = %(hash)s, "
    "checkpoint_seq = %(checkpoint_seq)s, checkpoint_time = %(checkpoint_time)s WHERE id = 1")
# Server-side placeholders ($n, a RawCursor): the driver sends the text as it is, with no
# parsing per execution.
_PG_ENQUEUE = (f"INSERT INTO audit_pending ({', '.join(_PENDING_COLUMNS)}) "
               f"VALUES ({', '.join(f'${n}' for n in range(1, len(_PENDING_COLUMNS) + 1))})")


@dataclass(frozen=True)
class Pending:
    """A record ready to be numbered: the body fields plus its searchable columns."""

    record: dict[str, Any]
    columns: dict[str, Any]
    patients: tuple[str, ...]


@dataclass(frozen=True)
class CheckpointPolicy:
    every_records: int = 10_000
    every_us: int = 15 * 60 * 1_000_000


@dataclass
class _Head:
    seq: int
    hash: str
    checkpoint_seq: int
    checkpoint_time: int


def pending_row(item: Pending) -> dict[str, Any]:
    """The ``audit_pending`` row of a record: what the sealer needs, nothing to recompute."""
    head, tail = split(item.record)
    patients = list(dict.fromkeys(item.patients))
    return {**item.columns, "body_head": head, "body_tail": tail,
            "patients": json.dumps(patients) if patients else None}


class Sequencer:
    def __init__(self, signer: Signer | None = None,
                 checkpoints: CheckpointPolicy = CheckpointPolicy(),
                 batch: int = SEAL_BATCH) -> None:
        self.signer = signer
        self.checkpoints = checkpoints
        self.batch = batch

    def enqueue(self, session: Session, pending: Sequence[Pending]) -> None:
        """Commit-time part of a request: its records, unnumbered, in its transaction."""
        if not pending:
            return
        rows = [pending_row(p) for p in pending]
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            session.execute(sa.insert(PENDING), rows)
            return
        # Every audited request runs this: straight to the driver, whose statement is
        # prepared after a few uses, costs a fraction of a compiled ORM-session insert.
        params = [tuple(r[c] for c in _PENDING_COLUMNS) for r in rows]
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = psycopg.RawCursor(cast(psycopg.Connection[Any], dbapi))
        try:
            if len(params) == 1:
                cursor.execute(_PG_ENQUEUE, params[0])
            else:
                cursor.executemany(_PG_ENQUEUE, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(_PG_ENQUEUE, params, exc,
                                             conn.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()

    def seal(self, session: Session, now: int, *, lock_timeout_ms: int | None = None) -> int:
        """Chain up to ``batch`` pending records; returns how many (``batch``: maybe more).

        ``lock_timeout_ms``: fail rather than wait longer for the chain's lock (PostgreSQL).
        """
        if session.get_bind().dialect.name == "postgresql":
            return self._seal_pg(session, now, lock_timeout_ms)
        head = _lock(session)
        sealed = self._seal_pending(session, head)
        if sealed:
            self._finish(session, head, now)
        return sealed

    def append(self, session: Session, pending: Sequence[Pending], now: int) -> list[int]:
        """Seal whatever is pending, then chain ``pending`` directly, all in the caller's
        transaction; returns the numbers ``pending`` got."""
        if not pending:
            return []
        head = _lock(session)
        while self._seal_pending(session, head) == self.batch:
            pass
        first = head.seq + 1
        self._chain(session, head, ((None, p.columns, *split(p.record),
                                     list(dict.fromkeys(p.patients))) for p in pending))
        self._finish(session, head, now)
        return list(range(first, head.seq + 1))

    def _seal_pg(self, session: Session, now: int, lock_timeout_ms: int | None) -> int:
        """``seal`` in five round trips of plain driver calls: every server process seals
        several times a second, and through the ORM the fixed cost of a seal was several
        times that of the records it chains."""
        conn = session.connection()
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        statement = _PG_LOCK_HEAD
        try:
            # No parameters: one simple-protocol message, both statements in one round trip.
            timeout = "" if not lock_timeout_ms else (
                f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}; ")
            cursor.execute(timeout + _PG_LOCK_HEAD)
            if timeout:
                cursor.nextset()
            row = cursor.fetchone()
            assert row is not None, "audit_head has its one row from the first migration on"
            seq, digest, checkpoint_seq, checkpoint_time = row
            head = _Head(int(seq), str(digest), int(checkpoint_seq), int(checkpoint_time))
            statement = _PG_TAKE
            rows = cursor.execute(_PG_TAKE, (self.batch,)).fetchall()
            if not rows:
                return 0
            first, prev = head.seq + 1, head.hash
            id_list, hashes = self._hash_pending(head, rows)
            statement = _PG_SEAL
            cursor.execute(_PG_SEAL, {"ids": id_list, "first": first, "prev": prev,
                                      "hashes": hashes})
            if self._checkpoint_due(head, now):
                statement = "checkpoint"
                checkpoint(session, cast(Signer, self.signer), head.seq, head.hash, now)
                head.checkpoint_seq, head.checkpoint_time = head.seq, now
            statement = _PG_SEALED_AND_HEAD
            cursor.execute(_PG_SEALED_AND_HEAD, {
                "ids": id_list, "seq": head.seq, "hash": head.hash,
                "checkpoint_seq": head.checkpoint_seq, "checkpoint_time": head.checkpoint_time})
            return len(rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(statement, None, exc,
                                             conn.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()

    def _hash_pending(self, head: _Head, rows: Sequence[Any]) -> tuple[str, str]:
        """Number and chain pending ``(id, body_head, body_tail)`` rows from ``head`` (moved
        to the last of them): the ids joined by commas and the hashes concatenated."""
        seq, prev = head.seq, head.hash
        ids, hashes = [], []
        sha256 = hashlib.sha256
        for pending_id, body_head, body_tail in rows:
            seq += 1
            prev = sha256(f"{prev}\n{body_head}{seq}{body_tail}".encode()).hexdigest()
            ids.append(str(pending_id))
            hashes.append(prev)
        head.seq, head.hash = seq, prev
        return ",".join(ids), "".join(hashes)

    def _checkpoint_due(self, head: _Head, now: int) -> bool:
        return self.signer is not None and (
            head.seq - head.checkpoint_seq >= self.checkpoints.every_records
            or now - head.checkpoint_time >= self.checkpoints.every_us)

    def _seal_pending(self, session: Session, head: _Head) -> int:
        if session.get_bind().dialect.name == "postgresql":
            return self._seal_pending_pg(session, head)
        rows = session.execute(
            sa.select(PENDING.c.id, *(PENDING.c[c] for c in COLUMNS), PENDING.c.body_head,
                      PENDING.c.body_tail, PENDING.c.patients)
            .order_by(PENDING.c.id).limit(self.batch)).all()
        if not rows:
            return 0
        width = len(COLUMNS)
        self._chain(session, head, (
            (r[0], dict(zip(COLUMNS, r[1:width + 1], strict=True)), r[width + 1],
             r[width + 2], json.loads(r[width + 3]) if r[width + 3] else [])
            for r in rows))
        session.execute(sa.delete(PENDING).where(PENDING.c.id.in_([r[0] for r in rows])))
        return len(rows)

    def _seal_pending_pg(self, session: Session, head: _Head) -> int:
        """The same steps with the columns and patients copied inside the database: Python
        fetches only what it hashes and sends back the hashes, three statements per batch."""
        conn = session.connection()
        rows = conn.exec_driver_sql(_PG_TAKE, (self.batch,)).all()
        if not rows:
            return 0
        first, prev = head.seq + 1, head.hash
        id_list, hashes = self._hash_pending(head, rows)
        conn.exec_driver_sql(_PG_SEAL, {"ids": id_list, "first": first, "prev": prev,
                                        "hashes": hashes})
        conn.exec_driver_sql(_PG_SEALED, (id_list,))
        return len(rows)

    def _chain(self, session: Session,
               head: _Head, items: Iterable[tuple[int | None, dict[str, Any], str, str,
                                                  list[str]]]) -> None:
        """Number, join and chain ``(pending id, columns, body head, body tail, patients)``."""
        seq, prev = head.seq, head.hash
        records: list[dict[str, Any]] = []
        patients: list[dict[str, Any]] = []
        sha256 = hashlib.sha256
        for pending_id, columns, body_head, body_tail, named in items:
            seq += 1
            body = f"{body_head}{seq}{body_tail}"
            digest = sha256(f"{prev}\n{body}".encode()).hexdigest()
            records.append({**columns, "seq": seq, "body": body, "prev_hash": prev,
                            "hash": digest, "pending_id": pending_id})
            patients += [{"seq": seq, "patient_id": p} for p in named]
            prev = digest
        if records:
            session.execute(sa.insert(RECORD), records)
        if patients:
            session.execute(sa.insert(PATIENT), patients)
        head.seq, head.hash = seq, prev

    def _finish(self, session: Session, head: _Head, now: int) -> None:
        values: dict[str, Any] = {"seq": head.seq, "hash": head.hash}
        if self._checkpoint_due(head, now):
            checkpoint(session, cast(Signer, self.signer), head.seq, head.hash, now)
            values.update(checkpoint_seq=head.seq, checkpoint_time=now)
            head.checkpoint_seq, head.checkpoint_time = head.seq, now
        session.execute(_MOVE_HEAD, values)


# Built once: every seal runs both, and building a statement costs more than running it.
_LOCK_HEAD = (sa.select(HEAD.c.seq, HEAD.c.hash, HEAD.c.checkpoint_seq, HEAD.c.checkpoint_time)
              .where(HEAD.c.id == 1).with_for_update())
_MOVE_HEAD = sa.update(HEAD).where(HEAD.c.id == 1)


def _lock(session: Session) -> _Head:
    row = session.execute(_LOCK_HEAD).one()
    return _Head(int(row[0]), str(row[1]), int(row[2]), int(row[3]))


def has_pending(session: Session) -> bool:
    return session.execute(sa.select(PENDING.c.id).limit(1)).first() is not None


def pending_count(conn: sa.Connection | Session) -> tuple[int, int | None]:
    """How many records wait for sealing, and the time (µs) of the oldest."""
    count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(PENDING.c.time))).one()
    return int(count), None if oldest is None else int(oldest)


def checkpoint(session: Session, signer: Signer, seq: int, head_hash: str, now: int) -> str:
    """Sign the head and keep the statement in the database; returns the JWS."""
    jws = signer({"seq": seq, "hash": head_hash, "time": now})
    session.execute(sa.insert(CHECKPOINT).values(seq=seq, hash=head_hash, time=now, jws=jws))
    return jws


def head(session: Session) -> tuple[int, str]:
    row = session.execute(sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).one()
    return int(row[0]), str(row[1])
