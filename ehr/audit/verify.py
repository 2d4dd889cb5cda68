"""Verifying the audit trail: the whole chain, streamed, against every signed checkpoint.

One read-only transaction (a REPEATABLE READ snapshot on PostgreSQL, a WAL snapshot on SQLite)
so records appended meanwhile neither break nor join the pass. Records come in keyset batches
by ``seq`` (``record_stream``: constant memory, read one batch ahead by a thread); for each the
hash is recomputed from the stored text, its link to its predecessor and its number are
checked, and its body is parsed once (orjson) to check every searchable column and its
``audit_patient`` rows against it. The first anomaly stops the pass and ``damage.diagnose``
names it. The hash is the one of ``canonical.link``, written out inline because this loop runs
a million times.
"""

from __future__ import annotations

import hashlib
import time as timer
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from ehr.audit.record_stream import batches
from ehr.audit.sequencer import HEAD, RECORD

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

    @property
    def intact(self) -> bool:
        return self.damage is None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        state = "intact" if self.damage is None else f"DAMAGED: {self.damage.describe()}"
        return (f"{self.records:,} records checked in {self.seconds:.1f} s "
                f"({self.rate:,.0f}/s), last seq {self.last_seq}, "
                f"{self.checkpoints} checkpoints checked: {state}")


def verify_chain(engine: Engine, verifier: CheckpointVerifier, *,
                 checkpoints: Sequence[Checkpoint] = (), batch_size: int = BATCH,
                 progress: Progress | None = None) -> Report:
    """Check the whole trail; ``checkpoints`` are extra ones, e.g. read from files."""
    started = timer.perf_counter()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            report = _Pass(conn, verifier, batch_size, progress).run(checkpoints)
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

    def run(self, extra: Sequence[Checkpoint]) -> Report:
        report = self.report
        head = self.conn.execute(sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).first()
        pins, forged = self._checkpoints([*stored_checkpoints(self.conn), *extra])
        top = self.conn.execute(sa.select(sa.func.max(RECORD.c.seq))).scalar() or 0
        total = max(int(top), int(head[0]) if head else 0)
        damage = self._stream(pins, total)
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

    def _stream(self, pins: dict[int, list[Checkpoint]], total: int) -> Damage | None:
        report = self.report
        stops = sorted(pins)
        stop_at = 0
        next_pin = stops[0] if stops else -1
        agreed = 0  # the last checkpoint the chain agreed with
        expected, prev, prev_prev = 1, GENESIS, ""
        minutes, prefix = -1, ""
        loads, sha256 = orjson.loads, hashlib.sha256
        stream = batches(self.conn, self.batch)

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
                    minute, fraction = divmod(row[1], 60_000_000)
                    if minute != minutes:
                        minutes, prefix = minute, _minute_text(minute)
                    if not _columns_agree(row, record, f"{prefix}{fraction / 1e6:09.6f}Z"):
                        return stop(Damage(EDITED, seq, "a searchable column disagrees with "
                                           "the body"))
                    named = record.get("patients")
                    stored = patients.get(seq)
                    if (stored or named) and not _same_patients(stored, named):
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


def _minute_text(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")


def _same_patients(stored: str | None, named: Any) -> bool:
    if type(named) is not list or stored is None:
        return False
    if len(named) == 1:
        return stored == named[0]
    return set(stored.split(" ")) == set(named)


def _columns_agree(row: Any, record: dict[str, Any], time_text: str) -> bool:
    try:
        actor = record["actor"]
        resource = record["resource"]
        if resource is None:
            rtype = rid = version = None
        else:
            rtype, rid, version = resource["type"], resource["id"], resource["version"]
        return bool(
            row[2] == record["category"] and row[3] == record["interaction"]
            and row[4] == record["outcome"] and row[5] == record["status"]
            and row[6] == actor["id"] and row[7] == actor["kind"] and row[8] == rtype
            and row[9] == rid and row[10] == version and row[11] == record["request_id"]
            and row[12] == record["purpose_of_use"]
            and bool(row[13]) == bool(record["protected"]) and time_text == record["time"])
    except (KeyError, TypeError):
        return False
