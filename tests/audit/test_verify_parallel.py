"""The fast PostgreSQL pass of ``verify_chain`` (``verify_parallel``, ``verify_range``): split
over worker processes it reports exactly what the exact single pass reports, damage at range
boundaries included, and its body-free column check lets no edited column through."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import pytest
from sqlalchemy import Connection, Engine, text

from audit.chain_attacks import as_owner, edited_body, produce, record, shift, verifier
from ehr.audit import damage
from ehr.audit.canonical import link
from ehr.audit.verify import Report, verify_chain
from ehr.audit.verify_parallel import plan
from ehr.config import Settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work


@pytest.fixture
def pg(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("the fast pass is PostgreSQL's")
    return engine


def _run(engine: Engine, settings: Settings, workers: int, min_range: int = 1) -> Report:
    return verify_chain(engine, verifier(settings), workers=workers, min_range=min_range)


def _same_as_exact(engine: Engine, settings: Settings) -> Report:
    """The split pass (three processes) and the exact pass agree; returns the split one."""
    exact = _run(engine, settings, workers=0)
    for workers in (1, 3):
        split = _run(engine, settings, workers=workers)
        assert (split.records, split.last_seq, split.last_hash, split.damage) == (
            exact.records, exact.last_seq, exact.last_hash, exact.damage), workers
    return split


def test_plan_covers_the_chain_once() -> None:
    assert plan(0, 4) == []
    assert plan(10, 4, min_range=100) == [(1, 10)]
    ranges = plan(1_000_003, 3, min_range=10)
    assert ranges[0][0] == 1 and ranges[-1][1] == 1_000_003 and len(ranges) == 3
    assert all(b + 1 == c for (_, b), (c, _) in pairwise(ranges))


def test_intact_chain_over_processes(pg: Engine, settings: Settings) -> None:
    last = produce(pg, settings)
    seen: list[int] = []
    report = verify_chain(pg, verifier(settings), workers=3, min_range=1, batch_size=2,
                          progress=lambda done, total: seen.append(done))
    assert report.intact, report.summary()
    assert report.records == report.last_seq == last
    assert max(seen) == last
    assert _same_as_exact(pg, settings).intact


def _boundaries(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        top = int(conn.execute(text("SELECT max(seq) FROM audit_record")).scalar_one())
    return [a for a, _ in plan(top, 3, min_range=1)][1:]


Attack = Callable[[Connection, int], None]


def _edit_column(conn: Connection, k: int) -> None:
    conn.execute(text("UPDATE audit_record SET actor_kind = 'user' || actor_kind "
                      "WHERE seq = :s"), {"s": k})


def _edit_body(conn: Connection, k: int) -> None:
    body = conn.execute(text("SELECT body FROM audit_record WHERE seq = :s"),
                        {"s": k}).scalar_one()
    conn.execute(text("UPDATE audit_record SET body = :b WHERE seq = :s"),
                 {"b": edited_body(body, query="forged"), "s": k})


def _delete(conn: Connection, k: int) -> None:
    for table in ("audit_record", "audit_patient"):
        conn.execute(text(f"DELETE FROM {table} WHERE seq = :s"), {"s": k})


def _delete_renumber(conn: Connection, k: int) -> None:
    for table in ("audit_record", "audit_patient"):
        conn.execute(text(f"DELETE FROM {table} WHERE seq = :s"), {"s": k})
        shift(conn, table, k + 1, -1)


def _swap(conn: Connection, k: int) -> None:
    for table in ("audit_record", "audit_patient"):
        conn.execute(text(f"UPDATE {table} SET seq = -1 WHERE seq = :k"), {"k": k - 1})
        conn.execute(text(f"UPDATE {table} SET seq = :a WHERE seq = :b"), {"a": k - 1, "b": k})
        conn.execute(text(f"UPDATE {table} SET seq = :k WHERE seq = -1"), {"k": k})


def _rehash_own(conn: Connection, k: int) -> None:
    row = conn.execute(text("SELECT body, prev_hash FROM audit_record WHERE seq = :s"),
                       {"s": k}).one()
    body = edited_body(row[0], status=299)
    conn.execute(text("UPDATE audit_record SET body = :b, hash = :h, status = 299 "
                      "WHERE seq = :s"), {"b": body, "h": link(row[1], body), "s": k})


def _drop_patient(conn: Connection, k: int) -> None:
    conn.execute(text("DELETE FROM audit_patient WHERE seq = (SELECT min(seq) FROM "
                      "audit_patient WHERE seq >= :s)"), {"s": k})


@pytest.mark.parametrize("attack", [_edit_column, _edit_body, _delete, _delete_renumber, _swap,
                                    _rehash_own, _drop_patient])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_damage_at_range_boundaries(pg: Engine, settings: Settings, attack: Attack,
                                    offset: int) -> None:
    produce(pg, settings)
    k = _boundaries(pg)[0] + offset
    with as_owner(pg) as conn:
        attack(conn, k)
    report = _same_as_exact(pg, settings)
    assert report.damage is not None


@pytest.mark.parametrize(("column", "value"), [
    ("category", "'security'"), ("interaction", "'vread'"), ("outcome", "'error'"),
    ("status", "status + 1"), ("actor_id", "NULL"), ("actor_id", "''"),
    ("actor_kind", "'us\"er'"), ("actor_id", "actor_id || '\",\"kind\":\"' || actor_kind"),
    ("rtype", "'Observation'"), ("rid", "NULL"),
    ("rid", "'null'"), ("version_id", "coalesce(version_id, 0) + 1"),
    ("request_id", "request_id || '\\'"), ("purpose", "NULL"), ("protected", "NOT protected"),
    ("time", "time + 1"),
])
def test_no_edited_column_passes(pg: Engine, settings: Settings, column: str,
                                 value: str) -> None:
    last = produce(pg, settings)
    for k in (2, last // 2 + 1, last):
        before = record(pg, k)[column]
        with as_owner(pg) as conn:
            conn.execute(text(f"UPDATE audit_record SET {column} = {value} WHERE seq = :s"),
                         {"s": k})
        report = _run(pg, settings, workers=1)
        assert report.damage is not None, (column, value, k)
        assert (report.damage.kind, report.damage.seq) == (damage.EDITED, k)
        assert "column" in report.damage.detail
        with as_owner(pg) as conn:
            conn.execute(text(f"UPDATE audit_record SET {column} = :v WHERE seq = :s"),
                         {"v": before, "s": k})
        assert _run(pg, settings, workers=1).intact


def test_bodies_needing_escapes_take_the_exact_check(pg: Engine, settings: Settings) -> None:
    """A user agent with quotes and backslashes puts escapes in the body (and in COPY's text):
    the fast check cannot decide, the exact one does, and still catches edits."""
    from ehr.app import build_pipeline
    from ehr.fhir.writer import Writer

    ctx = RequestContext(actor=SYSTEM, source_ip="192.0.2.7",
                         user_agent='evil "agent" \\ with\ttab')
    with unit_of_work(pg) as session:
        Writer(build_pipeline(settings), session, ctx).create(
            "Patient", {"resourceType": "Patient", "name": [{"family": "Esc\\aped"}]})
    last = produce(pg, settings)
    assert "\\" in record(pg, 1)["body"]
    assert _same_as_exact(pg, settings).intact
    with as_owner(pg) as conn:
        conn.execute(text("UPDATE audit_record SET actor_id = 'x' WHERE seq = 1"))
    report = _same_as_exact(pg, settings)
    assert report.damage is not None and (report.damage.kind, report.damage.seq) == (
        damage.EDITED, 1)
    assert last > 1
