"""Verifying the audit trail: the whole chain, streamed, against every signed checkpoint.

One read-only transaction (a REPEATABLE READ snapshot on PostgreSQL, a WAL snapshot on SQLite)
so records appended meanwhile neither break nor join the pass. Records come in keyset batches
by ``seq`` (``record_stream``: constant memory, read one batch ahead by a thread); for each the
hash is recomputed from the stored text, its link to its predecessor and its number are
checked, and its body is parsed once (orjson) to check every searchable column and its
``audit_patient`` rows against it. The first anomaly stops the pass and ``damage.diagnose``
names it. The hash is the one of ``canonical.link``, written out inline because this loop runs
a million times.

On PostgreSQL a faster pass runs first (``verify_parallel``, ``verify_range``): the chain is cut
into seq ranges checked by several processes in the same snapshot, each streaming its range with
COPY and checking the columns without parsing bodies. Where it finds nothing, it is the whole
verification; where it stops, this exact pass resumes from the last verified record and names
the damage, so the report does not depend on which pass found it.
"""

from __future__ import annotations

import hashlib
import os
import time as timer
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from ehr.audit.canonical import GENESIS
from ehr.audit.checkpoints import Checkpoint, CheckpointVerifier, stored_checkpoints
from ehr.audit.damage import (
    EDITED,
    FORGED_CHECKPOINT,
    INSERTED,
    REWRITTEN,
    TRUNCATED,
    Damage,
    Position,
    diagnose,
)
from ehr.audit.record_check import (
    MINUTE_US,
    columns_agree,
    minute_text,
    same_patients,
    second_text,
)
from ehr.audit.record_stream import batches
from ehr.audit.sequencer import HEAD, RECORD, pending_count
from ehr.audit.verify_parallel import MIN_RANGE, ChainState, merge, plan, run_ranges
from ehr.instants import instant

BATCH = 10_000
# Called with (records checked, records expected in all) after every batch.
Progress = Callable[[int, int], None]


@dataclass
class Report:
    records: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    checkpoints: int = 0
    seconds: float = 0.0
    damage: Damage | None = None
    # Committed records not chained yet (the sealer's backlog): not damage, but not yet
    # protected by the chain either.
    pending: int = 0
    pending_since: int | None = None

    @property
    def intact(self) -> bool:
        return self.damage is None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        state = "intact" if self.damage is None else f"DAMAGED: {self.damage.describe()}"
        waiting = ""
        if self.pending:
            since = "" if self.pending_since is None else f", oldest {instant(self.pending_since)}"
            waiting = f", {self.pending:,} records awaiting sealing{since}"
        return (f"{self.records:,} records checked in {self.seconds:.1f} s "
                f"({self.rate:,.0f}/s), last seq {self.last_seq}, "
                f"{self.checkpoints} checkpoints checked{waiting}: {state}")


def verify_chain(engine: Engine, verifier: CheckpointVerifier, *,
                 checkpoints: Sequence[Checkpoint] = (), batch_size: int = BATCH,
                 progress: Progress | None = None, workers: int | None = None,
                 min_range: int = MIN_RANGE) -> Report:
    """Check the whole trail; ``checkpoints`` are extra ones, e.g. read from files.

    On PostgreSQL up to ``workers`` processes (default: one per CPU) share the work, one per
    ``min_range`` records at least; ``workers=0`` skips the fast pass (the exact one alone).
    """
    if workers is None:
        workers = os.cpu_count() or 1
    started = timer.perf_counter()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            report = _Pass(conn, verifier, batch_size, progress).run(
                checkpoints, workers, min_range)
    report.seconds = timer.perf_counter() - started
    return report


class _Pass:
    def __init__(self, conn: Connection, verifier: CheckpointVerifier, batch_size: int,
                 progress: Progress | None) -> None:
        self.conn = conn
        self.verifier = verifier
        self.batch = max(1, batch_size)
        self.progress = progress
        self.report = Report()

    def run(self, extra: Sequence[Checkpoint], workers: int, min_range: int) -> Report:
        report = self.report
        head = self.conn.execute(sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).first()
        report.pending, report.pending_since = pending_count(self.conn)
        pins, forged = self._checkpoints([*stored_checkpoints(self.conn), *extra])
        top = self.conn.execute(sa.select(sa.func.max(RECORD.c.seq))).scalar() or 0
        total = max(int(top), int(head[0]) if head else 0)
        state, whole = ChainState(), False
        if self.conn.dialect.name == "postgresql" and workers > 0:
            state, whole = self._fast(pins, total, workers, min_range)
        if whole:
            report.records = report.last_seq = state.expected - 1
            report.last_hash = state.prev
            damage = None
        else:
            damage = self._stream(pins, total, state)
        if damage is None:
            damage = self._ends(head, pins)
        candidates = [d for d in (damage, forged) if d is not None]
        report.damage = min(candidates, key=lambda d: d.seq) if candidates else None
        return report

    def _checkpoints(self, cps: Iterable[Checkpoint]
                     ) -> tuple[dict[int, list[Checkpoint]], Damage | None]:
        pins: dict[int, list[Checkpoint]] = {}
        forged: Damage | None = None
        for cp in cps:
            self.report.checkpoints += 1
            try:
                payload = self.verifier(cp.jws)
                problem = None if cp.payload_matches(payload) else \
                    "its fields differ from what was signed"
            except ValueError as exc:
                problem = str(exc)
            if problem is not None:
                if forged is None or cp.seq < forged.seq:
                    forged = Damage(FORGED_CHECKPOINT, cp.seq, f"{cp.source}: {problem}")
                continue
            pins.setdefault(cp.seq, []).append(cp)
        return pins, forged

    def _fast(self, pins: dict[int, list[Checkpoint]], total: int, workers: int,
              min_range: int) -> tuple[ChainState, bool]:
        progress = self.progress
        hashes = {seq: [cp.hash for cp in cps] for seq, cps in pins.items()}
        results = run_ranges(self.conn, plan(total, workers, min_range), hashes, self.batch,
                             None if progress is None else lambda n: progress(n, total))
        return merge(results)

    def _stream(self, pins: dict[int, list[Checkpoint]], total: int,
                start: ChainState) -> Damage | None:
        """The exact pass, from ``start`` (the chain before it is verified) to the end."""
        report = self.report
        stops = sorted(s for s in pins if s >= start.expected)
        stop_at = 0
        next_pin = stops[0] if stops else -1
        agreed = start.agreed  # the last checkpoint the chain agreed with
        expected, prev, prev_prev = start.expected, start.prev, start.prev_prev
        minutes, prefix = -1, ""
        loads, sha256 = orjson.loads, hashlib.sha256
        report.records = report.last_seq = expected - 1
        report.last_hash = prev
        stream = batches(self.conn, self.batch, after=expected - 1)

        def stop(found: Damage) -> Damage:
            # Every record before the bad one verified, and they are numbered 1..expected-1.
            report.records = report.last_seq = expected - 1
            report.last_hash = prev
            return found

        try:
            for rows, patients in stream:
                # The hot loop: everything inline, as this runs once per record.
                for row in rows:
                    seq, body, prev_hash, digest = row[0], row[14], row[15], row[16]
                    record: Any = None
                    try:  # noqa: SIM105  (contextlib.suppress costs per record in this loop)
                        record = loads(body)
                    except orjson.JSONDecodeError:
                        pass
                    if (seq != expected or prev_hash != prev
                            or sha256(f"{prev_hash}\n{body}".encode()).hexdigest() != digest
                            or type(record) is not dict or record.get("seq") != seq):
                        stream.close()
                        found = diagnose(self.conn, Position(expected, prev, prev_prev or None),
                                         seq, body, prev_hash, digest, record)
                        return stop(found or Damage(EDITED, seq, "the record does not fit "
                                                    "the chain"))
                    minute, fraction = divmod(row[1], MINUTE_US)
                    if minute != minutes:
                        minutes, prefix = minute, minute_text(minute)
                    if not columns_agree(row, record, f"{prefix}{second_text(fraction)}Z"):
                        return stop(Damage(EDITED, seq, "a searchable column disagrees with "
                                           "the body"))
                    named = record.get("patients")
                    stored = patients.get(seq)
                    if (stored or named) and not same_patients(stored, named):
                        return stop(Damage(EDITED, seq, "audit_patient rows disagree with the "
                                           "body"))
                    if seq == next_pin:
                        for cp in pins[seq]:
                            if cp.hash != digest:
                                return stop(Damage(
                                    REWRITTEN, agreed + 1, "the chain was recomputed: "
                                    f"checkpoint {cp.source} signed another hash for seq {seq}",
                                    until=seq))
                        agreed = seq
                        stop_at += 1
                        next_pin = stops[stop_at] if stop_at < len(stops) else -1
                    prev_prev, prev = prev, digest
                    expected = seq + 1
                report.records = report.last_seq = expected - 1
                report.last_hash = prev
                if self.progress is not None:
                    self.progress(report.records, total)
        finally:
            stream.close()
        return None

    def _ends(self, head: Any, pins: dict[int, list[Checkpoint]]) -> Damage | None:
        last, last_hash = self.report.last_seq, self.report.last_hash
        beyond = [s for s in pins if s > last]
        if beyond:
            return Damage(TRUNCATED, last + 1, f"the chain ends at {last} but a checkpoint "
                          f"pins seq {max(beyond)}")
        orphan = self.conn.execute(sa.text("SELECT min(seq) FROM audit_patient WHERE seq > :s"),
                                   {"s": last}).scalar()
        if orphan is not None:
            return Damage(INSERTED, int(orphan), "audit_patient rows for a record that is not "
                          "in the chain")
        if head is None:
            return Damage(EDITED, last, "the audit_head row is missing")
        head_seq, head_hash = int(head[0]), str(head[1])
        if head_seq > last:
            return Damage(TRUNCATED, last + 1, f"the chain ends at {last} but the head is at "
                          f"{head_seq}")
        if head_seq < last:
            return Damage(INSERTED, head_seq + 1, f"records past the head ({head_seq}) exist")
        if head_hash != last_hash:
            return Damage(EDITED, last, "the head row's hash differs from the last record's")
        return None
