"""Batch sealing (issue 4 item 3): requests commit unnumbered records, the sealer chains them.

The body is joined around its number without re-serialising; a committed record waits in
``audit_pending`` until a seal chains it exactly once, in a chain without forks or gaps even
when many sealers race; a rolled-back request leaves nothing; a pending record can leave its
table only into the chain, verbatim; checkpoints and ``verify`` seal or report what waits.
SQLite and PostgreSQL unless marked.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from audit.chain_attacks import check, signer
from ehr.audit.canonical import canonical, join, split
from ehr.audit.checkpoints import take_checkpoint
from ehr.audit.events import AccessEvent
from ehr.audit.recorder import AuditRecorder, build_pending
from ehr.audit.sealer import settle
from ehr.audit.sequencer import CheckpointPolicy, Sequencer
from ehr.config import Settings
from ehr.context import RequestContext
from ehr.db import unit_of_work


def clock() -> int:
    return time.time_ns() // 1000


CTX = RequestContext(source_ip="192.0.2.9", user_agent="sealing-tests")

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)
# Keys on both sides of "seq" and next to it in code-point order, plus arbitrary ones.
_keys = st.sampled_from(["", "a", "r", "se", "sep", "seq0", "seqa", "sequence", "s", "t",
                         "Z", "ä", "seq\u0000", "sep~"]) | st.text(max_size=6)


@given(st.dictionaries(_keys.filter(lambda k: k != "seq"), _json, max_size=6),
       st.integers(min_value=1, max_value=10**15))
def test_joined_body_is_the_canonical_serialisation(record: dict[str, Any], seq: int) -> None:
    head, tail = split(record)
    assert join(head, seq, tail) == canonical({**record, "seq": seq})


def event(n: int, patients: tuple[str, ...] = ()) -> AccessEvent:
    return AccessEvent("read", "Patient", f"p{n}", patients=patients or (f"p{n}",))


def enqueue(engine: Engine, *events: AccessEvent) -> None:
    """What a request does at commit on PostgreSQL: its records, unnumbered, committed."""
    with unit_of_work(engine) as session:
        Sequencer().enqueue(session, [build_pending(CTX, ev, clock()) for ev in events])


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def seal(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return Sequencer().seal(session, clock())


def test_pending_records_are_chained_once_with_their_patients(engine: Engine,
                                                             settings: Settings) -> None:
    enqueue(engine, event(1), event(2, ("a", "b", "a")))
    enqueue(engine, event(3))
    assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (3, 0)
    assert seal(engine) == 3
    assert seal(engine) == 0
    assert count(engine, "audit_pending") == 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, rid, body, pending_id FROM audit_record "
                                 "ORDER BY seq")).all()
        patients = conn.execute(text("SELECT seq, patient_id FROM audit_patient "
                                     "ORDER BY seq, patient_id")).all()
    assert [(r.seq, r.rid) for r in rows] == [(1, "p1"), (2, "p2"), (3, "p3")]
    # Chained in the order the records were committed, each from its own pending row.
    assert [r.pending_id for r in rows] == sorted(r.pending_id for r in rows)
    assert all(json.loads(r.body)["seq"] == r.seq for r in rows)
    assert [tuple(p) for p in patients] == [(1, "p1"), (2, "a"), (2, "b"), (3, "p3")]
    report = check(engine, settings)
    assert report.intact and report.records == 3 and report.pending == 0, report.summary()


def test_successive_seals_continue_the_chain_with_bodies_joined_in_the_database(
        engine: Engine, settings: Settings) -> None:
    # PostgreSQL joins each body and cuts each hash from one parameter: the second seal's first
    # record must link to the head the first seal left, and text JSON escapes must survive.
    odd = AccessEvent("read", "Patient", 'é"\\\u2028,', 1, patients=("ü", "a,b"),
                      detail={"reason": "line\nbreak ☃"})
    enqueue(engine, event(1), odd)
    assert seal(engine) == 2
    enqueue(engine, odd, event(4), event(5, ("x",)))
    assert seal(engine) == 3
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, body, prev_hash, hash FROM audit_record "
                                 "ORDER BY seq")).all()
        patients = conn.execute(text("SELECT seq, patient_id FROM audit_patient "
                                     "ORDER BY seq, patient_id")).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(rows))
    assert json.loads(rows[2].body)["resource"]["id"] == 'é"\\\u2028,'
    assert [tuple(p) for p in patients] == [
        (1, "p1"), (2, "a,b"), (2, "ü"), (3, "a,b"), (3, "ü"), (4, "p4"), (5, "x")]
    report = check(engine, settings)
    assert report.intact and report.records == 5, report.summary()


def test_a_rolled_back_request_leaves_nothing(engine: Engine) -> None:
    recorder = AuditRecorder(Sequencer(), clock, seal_interval_ms=5)
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        recorder.record(session, CTX, event(1))
        session.execute(text("SELECT 1"))
        raise RuntimeError("the request failed")
    assert count(engine, "audit_pending") == count(engine, "audit_record") == 0


def test_background_mode_commits_pending_then_seals(engine: Engine) -> None:
    """On PostgreSQL the request's transaction writes only the pending row; SQLite chains in it."""
    recorder = AuditRecorder(Sequencer(), clock, seal_interval_ms=60_000)
    try:
        with unit_of_work(engine) as session:
            recorder.record(session, CTX, event(1))
        if engine.dialect.name == "postgresql":
            assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (1, 0)
            assert recorder.seal_now(engine) == 1
        assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (0, 1)
    finally:
        recorder.close()


def test_background_sealer_chains_within_milliseconds(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite chains inside the request's transaction")
    recorder = AuditRecorder(Sequencer(), clock, seal_interval_ms=2)
    try:
        for n in range(5):
            with unit_of_work(engine) as session:
                recorder.record(session, CTX, event(n))
        deadline = time.monotonic() + 10
        while count(engine, "audit_record") < 5:
            assert time.monotonic() < deadline, "the background sealer did not run"
            time.sleep(0.01)
        assert count(engine, "audit_pending") == 0
    finally:
        recorder.close()


def _refused(engine: Engine, sql: str, **params: Any) -> None:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert "refused" in str(info.value) or "append-only" in str(info.value)


def test_a_pending_record_leaves_only_into_the_chain_verbatim(engine: Engine) -> None:
    enqueue(engine, event(1))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_pending")).mappings().one()
    _refused(engine, "UPDATE audit_pending SET actor_id = 'someone-else'")
    _refused(engine, "DELETE FROM audit_pending")
    _refused(engine, "DELETE FROM audit_pending WHERE id = :i", i=row["id"])
    if engine.dialect.name == "postgresql":
        _refused(engine, "TRUNCATE audit_pending")
    # "Sealing" it with another body does not let it go either.
    body = row["body_head"] + "1" + row["body_tail"].replace("sealing-tests", "innocent")
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_record (seq, time, category, interaction, outcome, status, "
            "protected, body, prev_hash, hash, pending_id) VALUES (1, :t, 'rest', 'read', "
            "'success', 200, false, :b, :z, :z, :i)"),
            {"t": row["time"], "b": body, "z": "0" * 64, "i": row["id"]})
        conn.execute(text("DELETE FROM audit_pending WHERE id = :i"), {"i": row["id"]})
    assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (1, 0)
    assert seal(engine) == 1
    assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (0, 1)


def test_verify_reports_records_awaiting_sealing(engine: Engine, settings: Settings) -> None:
    enqueue(engine, event(1), event(2))
    report = check(engine, settings)
    assert report.intact and report.pending == 2 and report.records == 0
    assert "2 records awaiting sealing" in report.summary()


def test_a_checkpoint_seals_first(engine: Engine, settings: Settings) -> None:
    enqueue(engine, event(1), event(2))
    with unit_of_work(engine) as session:
        cp = take_checkpoint(session, signer(settings), clock())
    assert cp.seq == 2 and count(engine, "audit_pending") == 0
    assert check(engine, settings).intact


def test_racing_sealers_leave_one_chain_without_gaps(engine: Engine, settings: Settings) -> None:
    """Writers commit records while several sealers race for the chain (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    writers, per_writer = 6, 25
    stop = threading.Event()
    errors: list[BaseException] = []
    sequencer = Sequencer(batch=7)  # small batches: many seals, many lock hand-overs

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                enqueue(engine, event(w * 1000 + i), event(w * 1000 + i + 500))
        except BaseException as exc:
            errors.append(exc)

    def seal_loop() -> None:
        try:
            while not stop.is_set():
                settle(engine, sequencer, clock, look_first=False)
        except BaseException as exc:
            errors.append(exc)

    sealers = [threading.Thread(target=seal_loop) for _ in range(3)]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in sealers + threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in sealers:
        t.join()
    assert not errors, errors[:3]
    settle(engine, sequencer, clock)
    total = writers * per_writer * 2
    assert count(engine, "audit_pending") == 0
    with engine.connect() as conn:
        seqs = [s for (s,) in conn.execute(text("SELECT seq FROM audit_record ORDER BY seq"))]
        rids = conn.execute(text("SELECT count(DISTINCT rid) FROM audit_record")).scalar_one()
    assert seqs == list(range(1, total + 1))
    assert rids == total  # each record exactly once
    report = check(engine, settings)
    assert report.intact and report.records == total, report.summary()


def test_a_seal_signs_a_checkpoint_when_one_is_due(engine: Engine, settings: Settings) -> None:
    sequencer = Sequencer(signer(settings), CheckpointPolicy(every_records=3))

    def seal_now() -> int:
        with unit_of_work(engine) as session:
            return sequencer.seal(session, clock())

    enqueue(engine, event(1), event(2))
    assert seal_now() == 2  # never signed: due at once
    enqueue(engine, event(3), event(4))
    assert seal_now() == 2  # 2 records since the last one: not due
    enqueue(engine, event(5))
    assert seal_now() == 1  # 3 records since: due, signed at the end of this seal
    with engine.connect() as conn:
        checkpoints = conn.execute(text("SELECT seq, hash FROM audit_checkpoint "
                                        "ORDER BY seq")).all()
        head = conn.execute(text("SELECT seq, hash, checkpoint_seq FROM audit_head")).one()
    assert [c.seq for c in checkpoints] == [2, 5]
    assert tuple(head) == (5, checkpoints[-1].hash, 5)
    report = check(engine, settings)
    assert report.intact and report.records == 5 and report.checkpoints == 2, report.summary()


def test_a_background_seal_gives_up_on_a_held_lock_and_leaves_records_pending(
        engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite seals inside the writing transaction: there is no lock to wait for")
    enqueue(engine, event(1))
    sequencer = Sequencer()
    with engine.connect() as holder:
        holder.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        started = time.monotonic()
        with pytest.raises(DBAPIError, match="lock"):
            settle(engine, sequencer, clock, look_first=False, lock_timeout_ms=200)
        assert time.monotonic() - started < 5
        holder.rollback()
    assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (1, 0)
    # The setting was local to the failed seal's transaction: the next seal waits normally.
    assert settle(engine, sequencer, clock, look_first=False) == 1
    assert (count(engine, "audit_pending"), count(engine, "audit_record")) == (0, 1)


def test_the_pending_queue_is_vacuumed_by_dead_rows_not_by_share(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no autovacuum")
    with engine.connect() as conn:
        options = conn.execute(text(
            "SELECT reloptions FROM pg_class WHERE relname = 'audit_pending'")).scalar_one()
    assert "autovacuum_vacuum_scale_factor=0" in options
    assert "autovacuum_vacuum_threshold=2000" in options
