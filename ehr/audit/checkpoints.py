"""Signed checkpoints: taking one by hand, and keeping one outside the database.

A checkpoint is a JWS over ``{"seq", "hash", "time"}`` signed with the server key. The copy in
``audit_checkpoint`` lets ``verify`` check the chain against every statement ever made; a copy
written to a file (or mailed, or printed) is what still convicts a database owner who rewrote the
whole chain and dropped the rows that would have betrayed it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlmodel import Session

from ehr.audit.sequencer import CHECKPOINT, HEAD, Sequencer, Signer, checkpoint
from ehr.errors import BadRequest, Conflict

# Returns the signed payload, or raises ValueError when the signature is not the server's.
CheckpointVerifier = Callable[[str], dict[str, Any]]


class CheckpointFileError(BadRequest):
    """A checkpoint file that cannot be read as one."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    time: int
    jws: str
    source: str = "database"

    def document(self) -> dict[str, Any]:
        """The JSON written to a checkpoint file."""
        data = asdict(self)
        del data["source"]
        return data

    def payload_matches(self, payload: dict[str, Any]) -> bool:
        """Whether the signed payload says what the readable fields say."""
        return (payload.get("seq") == self.seq and payload.get("hash") == self.hash
                and payload.get("time") == self.time)


def take_checkpoint(session: Session, signer: Signer, now: int) -> Checkpoint:
    """Seal what is pending, then sign the head; a checkpoint that already pins that sequence
    number is reused.

    The head row stays locked from the seal to the commit, so no record slips in between
    reading the head and signing it.
    """
    sequencer = Sequencer(signer)
    while sequencer.seal(session, now) == sequencer.batch:
        pass
    seq, head_hash = session.execute(
        sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1).with_for_update()
    ).one()
    if seq == 0:
        raise Conflict("the audit trail is empty: there is nothing to sign yet")
    existing = session.execute(
        sa.select(CHECKPOINT.c.seq, CHECKPOINT.c.hash, CHECKPOINT.c.time, CHECKPOINT.c.jws)
        .where(CHECKPOINT.c.seq == seq)
    ).first()
    if existing is not None:
        return Checkpoint(int(existing[0]), str(existing[1]), int(existing[2]), str(existing[3]))
    jws = checkpoint(session, signer, int(seq), str(head_hash), now)
    session.execute(sa.update(HEAD).where(HEAD.c.id == 1)
                    .values(checkpoint_seq=seq, checkpoint_time=now))
    return Checkpoint(int(seq), str(head_hash), now, jws)


def stored_checkpoints(conn: Connection) -> Iterator[Checkpoint]:
    """Every checkpoint in the database, by sequence number (one per thousands of records)."""
    rows = conn.execute(
        sa.select(CHECKPOINT.c.seq, CHECKPOINT.c.hash, CHECKPOINT.c.time, CHECKPOINT.c.jws)
        .order_by(CHECKPOINT.c.seq))
    for seq, digest, time, jws in rows:
        yield Checkpoint(int(seq), str(digest), int(time), str(jws))


def write_checkpoint_file(path: Path, cp: Checkpoint) -> None:
    """Write atomically: a half-written file would later look like a forged checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(cp.document(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_checkpoint_file(path: Path) -> Checkpoint:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFileError(f"{path}: not a readable checkpoint file ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{path}: a checkpoint file holds a JSON object")
    seq, digest, time, jws = (data.get(k) for k in ("seq", "hash", "time", "jws"))
    if not (isinstance(seq, int) and not isinstance(seq, bool) and seq > 0
            and isinstance(digest, str) and len(digest) == 64
            and isinstance(time, int) and not isinstance(time, bool)
            and isinstance(jws, str) and jws.count(".") == 2):
        raise CheckpointFileError(
            f"{path}: a checkpoint file needs seq (positive integer), hash (64 hex digits), "
            "time (integer microseconds) and jws (compact JWS)")
    return Checkpoint(seq, digest, time, jws, source=str(path))
