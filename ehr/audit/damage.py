"""Naming the damage once the verifier has found the first record that does not fit.

The streaming pass only knows that the record at one position is wrong. The evidence that tells
the kinds apart is in the record's own body (its original ``seq``, protected by its hash) and in
where its ``prev_hash`` points:

    edited      the record's hash does not match its body, its columns disagree with its body,
                or its successor does not chain to it (edited, then its own hash recomputed)
    deleted     a gap: the next number is missing, or the record there says it came later
    inserted    the record before chains to its predecessor's predecessor: something was put
                between them (or a record past the head, or a copy of an earlier record)
    reordered   the record's prev_hash is the hash of a record stored after it
    tail truncated  the chain ends before the head or a checkpoint says it reached
    rewritten   every hash is consistent, yet a signed checkpoint disagrees: the chain was
                recomputed after a change
    forged checkpoint  a checkpoint whose signature is not the server's
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ehr.audit.canonical import link
from ehr.audit.sequencer import RECORD

EDITED = "edited"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
TRUNCATED = "tail truncated"
REWRITTEN = "rewritten"
FORGED_CHECKPOINT = "forged checkpoint"


@dataclass(frozen=True)
class Damage:
    """The first bad sequence number and what happened there.

    For ``rewritten`` the change lies somewhere in ``seq..until``: nothing but the checkpoints
    remembers the original hashes, so the last checkpoint that agrees bounds it from below.
    """

    kind: str
    seq: int
    detail: str
    until: int | None = None

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.until is None else f"seq {self.seq}..{self.until}"
        return f"{self.kind} at {where}: {self.detail}"


@dataclass(frozen=True)
class Position:
    """Where the stream stood: the next expected number and the last two hashes seen."""

    expected: int
    prev_hash: str
    prev_prev_hash: str | None


def body_seq(record: Any) -> int | None:
    value = record.get("seq") if isinstance(record, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def diagnose(conn: Connection, at: Position, seq: int, body: str, prev_hash: str, digest: str,
             record: Any) -> Damage | None:
    """The damage at the row numbered ``seq``, which broke the chain; None if it did not.

    ``record`` is the parsed body, or None when the body is not JSON.
    """
    e = at.expected
    if seq > e:
        # Records e..seq-1 are gone without renumbering; unless what is missing lies later.
        if _stored_after(conn, prev_hash, seq):
            return Damage(REORDERED, e, f"record {e} is missing here and a later record "
                          "precedes it in the chain")
        return Damage(DELETED, e, f"sequence numbers {e}..{seq - 1} are missing")
    if link(prev_hash, body) != digest:
        return Damage(EDITED, seq, "the stored hash does not match the record's body")
    original = body_seq(record)
    if original is None:
        return Damage(EDITED, seq, "the body has no sequence number")
    if original > e:
        if _stored_after(conn, prev_hash, seq):
            return Damage(REORDERED, e, f"record {original} is stored at {seq}, before the "
                          "record it chains to")
        return Damage(DELETED, e, f"record {e} is missing: the next one stored is record "
                      f"{original}, renumbered")
    if original < e:
        if at.prev_prev_hash is not None and prev_hash == at.prev_prev_hash:
            return Damage(INSERTED, e - 1, f"record {e - 1} was put into the chain: its "
                          "neighbours chain past it")
        return Damage(INSERTED, e, f"a copy of record {original} is stored at {seq}")
    if prev_hash != at.prev_hash:
        if e == 1:
            return Damage(EDITED, 1, "the first record does not start from the genesis hash")
        return Damage(EDITED, e - 1, f"record {e - 1} was changed and its hash recomputed: "
                      f"record {e} no longer chains to it")
    return None


def _stored_after(conn: Connection, digest: str, seq: int) -> bool:
    # No index on hash: a full scan, run once, only on a damaged chain.
    found = conn.execute(sa.select(RECORD.c.seq).where(RECORD.c.hash == digest,
                                                        RECORD.c.seq > seq).limit(1)).first()
    return found is not None
