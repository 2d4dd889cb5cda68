"""The one serial point of the audit trail: numbering and chaining records.

Every append locks the single ``audit_head`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
SQLite the writing transaction already holds the database's write lock), takes the next
sequence numbers, chains the hashes and moves the head, all inside the caller's transaction.
Appends happen at commit time (``recorder``), so the lock is held only for the last insert and
the commit: concurrent requests from any number of workers queue on it and the chain has no
forks or gaps. The cost is one row lock per request, held for about one commit; to go past
that, this module is the place to switch to batch sealing without touching callers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.audit.canonical import canonical, link
from ehr.audit.tables import AuditCheckpointRow, AuditHeadRow, AuditPatientRow, AuditRecordRow

RECORD = AuditRecordRow.__table__  # type: ignore[attr-defined]
PATIENT = AuditPatientRow.__table__  # type: ignore[attr-defined]
HEAD = AuditHeadRow.__table__  # type: ignore[attr-defined]
CHECKPOINT = AuditCheckpointRow.__table__  # type: ignore[attr-defined]

Signer = Callable[[dict[str, Any]], str]


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


class Sequencer:
    def __init__(self, signer: Signer | None = None,
                 checkpoints: CheckpointPolicy = CheckpointPolicy()) -> None:
        self.signer = signer
        self.checkpoints = checkpoints

    def append(self, session: Session, pending: Sequence[Pending], now: int) -> list[int]:
        if not pending:
            return []
        head = session.execute(
            sa.select(HEAD.c.seq, HEAD.c.hash, HEAD.c.checkpoint_seq, HEAD.c.checkpoint_time)
            .where(HEAD.c.id == 1).with_for_update()
        ).one()
        seq, prev, cp_seq, cp_time = head
        records: list[dict[str, Any]] = []
        patients: list[dict[str, Any]] = []
        for item in pending:
            seq += 1
            body = canonical({**item.record, "seq": seq})
            digest = link(prev, body)
            records.append({**item.columns, "seq": seq, "body": body, "prev_hash": prev,
                            "hash": digest})
            patients += [{"seq": seq, "patient_id": p} for p in dict.fromkeys(item.patients)]
            prev = digest
        session.execute(sa.insert(RECORD), records)
        if patients:
            session.execute(sa.insert(PATIENT), patients)
        values: dict[str, Any] = {"seq": seq, "hash": prev}
        due = (seq - cp_seq >= self.checkpoints.every_records
               or now - cp_time >= self.checkpoints.every_us)
        if self.signer is not None and due:
            checkpoint(session, self.signer, seq, prev, now)
            values.update(checkpoint_seq=seq, checkpoint_time=now)
        session.execute(sa.update(HEAD).where(HEAD.c.id == 1).values(**values))
        return [r["seq"] for r in records]


def checkpoint(session: Session, signer: Signer, seq: int, head_hash: str, now: int) -> str:
    """Sign the head and keep the statement in the database; returns the JWS."""
    jws = signer({"seq": seq, "hash": head_hash, "time": now})
    session.execute(sa.insert(CHECKPOINT).values(seq=seq, hash=head_hash, time=now, jws=jws))
    return jws


def head(session: Session) -> tuple[int, str]:
    row = session.execute(sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).one()
    return int(row[0]), str(row[1])
