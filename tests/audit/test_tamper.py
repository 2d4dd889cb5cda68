"""Tamper evidence (issue 4 items 3, 4, 6): the database refuses changes to the trail and the
history, and an attacker who owns the tables, lifts the triggers and edits, deletes, inserts,
swaps, truncates or recomputes the chain is caught, with the right kind and first bad seq.
On SQLite and PostgreSQL; the records come from the real write and read paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from audit.chain_attacks import (
    as_owner,
    check,
    checkpoint_now,
    edited_body,
    head,
    patient_seqs,
    produce,
    rechain,
    record,
    shift,
)
from ehr.audit import damage
from ehr.audit.canonical import link
from ehr.audit.checkpoints import read_checkpoint_file, write_checkpoint_file
from ehr.config import Settings


def _middle(engine: Engine, settings: Settings) -> tuple[int, int]:
    last = produce(engine, settings)
    assert check(engine, settings).intact
    return last // 2, last


@pytest.mark.parametrize("statement", [
    "UPDATE audit_record SET actor_id = 'someone-else'",
    "DELETE FROM audit_record WHERE seq = 1",
    "DELETE FROM audit_record",
    "UPDATE resource_version SET deleted = NOT deleted",
    "DELETE FROM resource_version",
    "UPDATE audit_patient SET patient_id = 'x'",
    "DELETE FROM audit_checkpoint",
])
def test_triggers_refuse_changes(engine: Engine, settings: Settings, statement: str) -> None:
    produce(engine, settings, patients=1)
    table = statement.split()[1] if statement.startswith("UPDATE") else statement.split()[2]
    with engine.connect() as conn:
        before = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert before > 0
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert check(engine, settings).intact


@pytest.mark.parametrize("table", ["audit_record", "resource_version"])
def test_truncate_refused_on_postgresql(engine: Engine, settings: Settings, table: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE trigger covers it")
    produce(engine, settings, patients=1)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))


def test_edited_body(engine: Engine, settings: Settings) -> None:
    k, _ = _middle(engine, settings)
    body = edited_body(record(engine, k)["body"], source={"ip": "203.0.113.9",
                                                           "user_agent": "innocent"})
    with as_owner(engine) as conn:
        conn.execute(text("UPDATE audit_record SET body = :b WHERE seq = :s"), {"b": body, "s": k})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.EDITED, k)
    assert report.last_seq == k - 1


def test_edited_searchable_column_only(engine: Engine, settings: Settings) -> None:
    k, _ = _middle(engine, settings)
    with as_owner(engine) as conn:
        conn.execute(text("UPDATE audit_record SET actor_id = 'nobody' WHERE seq = :s"),
                     {"s": k})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.EDITED, k)
    assert "column" in report.damage.detail


def test_edited_patient_row(engine: Engine, settings: Settings) -> None:
    produce(engine, settings)
    k = patient_seqs(engine)[-1]
    with as_owner(engine) as conn:
        conn.execute(text("DELETE FROM audit_patient WHERE seq = :s"), {"s": k})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.EDITED, k)


def test_edited_with_its_own_hash_recomputed(engine: Engine, settings: Settings) -> None:
    k, _ = _middle(engine, settings)
    row = record(engine, k)
    body = edited_body(row["body"], status=299)
    with as_owner(engine) as conn:
        conn.execute(text("UPDATE audit_record SET body = :b, hash = :h, status = 299 "
                          "WHERE seq = :s"),
                     {"b": body, "h": link(row["prev_hash"], body), "s": k})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.EDITED, k)


@pytest.mark.parametrize("renumber", [False, True])
def test_deleted_middle_record(engine: Engine, settings: Settings, renumber: bool) -> None:
    k, _ = _middle(engine, settings)
    with as_owner(engine) as conn:
        for table in ("audit_record", "audit_patient"):
            conn.execute(text(f"DELETE FROM {table} WHERE seq = :s"), {"s": k})
            if renumber:
                shift(conn, table, k + 1, -1)
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.DELETED, k)


def test_inserted_forged_record(engine: Engine, settings: Settings) -> None:
    k, _ = _middle(engine, settings)
    before = record(engine, k - 1)
    forged = {**record(engine, k), "seq": k, "prev_hash": before["hash"], "actor_id": "forger",
              "actor_kind": "user"}
    forged["body"] = edited_body(forged["body"], seq=k, actor={
        "id": "forger", "kind": "user", "display": "Forger", "roles": []}, patients=[])
    forged["hash"] = link(forged["prev_hash"], forged["body"])
    with as_owner(engine) as conn:
        for table in ("audit_record", "audit_patient"):
            shift(conn, table, k, +1)
        columns = ", ".join(forged)
        conn.execute(text(f"INSERT INTO audit_record ({columns}) VALUES "
                          f"({', '.join(':' + c for c in forged)})"), forged)
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.INSERTED, k)


def test_record_appended_past_the_head(engine: Engine, settings: Settings) -> None:
    _, last = _middle(engine, settings)
    row = record(engine, last)
    extra = {**row, "seq": last + 1, "prev_hash": row["hash"],
             "body": edited_body(row["body"], seq=last + 1, patients=[])}
    extra["hash"] = link(extra["prev_hash"], extra["body"])
    with engine.begin() as conn:  # INSERT is allowed: no triggers to lift
        conn.execute(text(f"INSERT INTO audit_record ({', '.join(extra)}) VALUES "
                          f"({', '.join(':' + c for c in extra)})"), extra)
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.INSERTED, last + 1)


def test_swapped_records(engine: Engine, settings: Settings) -> None:
    k, _ = _middle(engine, settings)
    with as_owner(engine) as conn:
        for table in ("audit_record", "audit_patient"):
            conn.execute(text(f"UPDATE {table} SET seq = -1 WHERE seq = :k"), {"k": k})
            conn.execute(text(f"UPDATE {table} SET seq = :k WHERE seq = :n"), {"k": k, "n": k + 1})
            conn.execute(text(f"UPDATE {table} SET seq = :n WHERE seq = -1"), {"n": k + 1})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.REORDERED, k)


def test_truncated_tail_against_the_head(engine: Engine, settings: Settings) -> None:
    _, last = _middle(engine, settings)
    with as_owner(engine) as conn:
        for table in ("audit_record", "audit_patient"):
            conn.execute(text(f"DELETE FROM {table} WHERE seq > :s"), {"s": last - 2})
    report = check(engine, settings)
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.TRUNCATED, last - 1)


def test_truncated_tail_caught_by_checkpoint_file(engine: Engine, settings: Settings,
                                                  tmp_path: Path) -> None:
    _, last = _middle(engine, settings)
    path = tmp_path / "outside" / "checkpoint.json"
    write_checkpoint_file(path, checkpoint_now(engine, settings))
    keep = last - 3
    with as_owner(engine) as conn:
        for table in ("audit_record", "audit_patient", "audit_checkpoint"):
            conn.execute(text(f"DELETE FROM {table} WHERE seq > :s"), {"s": keep})
        kept = conn.execute(text("SELECT hash FROM audit_record WHERE seq = :s"),
                            {"s": keep}).scalar_one()
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                     {"s": keep, "h": kept})
    # A thorough attacker leaves nothing in the database to betray the cut...
    assert check(engine, settings).intact
    # ...but the checkpoint kept outside does.
    report = check(engine, settings, files=[read_checkpoint_file(path)])
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.TRUNCATED, keep + 1)


def test_recomputed_chain_is_rewritten(engine: Engine, settings: Settings,
                                       tmp_path: Path) -> None:
    k, last = _middle(engine, settings)
    path = tmp_path / "checkpoint.json"
    write_checkpoint_file(path, checkpoint_now(engine, settings))
    body = edited_body(record(engine, k)["body"], source={"ip": "203.0.113.9",
                                                           "user_agent": "innocent"})
    with as_owner(engine) as conn:
        conn.execute(text("UPDATE audit_record SET body = :b WHERE seq = :s"), {"b": body, "s": k})
        rechain(conn, k)
    assert head(engine)[0] == last
    report = check(engine, settings)
    assert report.damage is not None and report.damage.kind == damage.REWRITTEN
    assert report.damage.until is not None
    assert report.damage.seq <= k <= report.damage.until
    # Without the database's checkpoints, the file alone convicts the rewrite.
    with as_owner(engine) as conn:
        conn.execute(text("DELETE FROM audit_checkpoint WHERE seq >= :s"), {"s": k})
    assert check(engine, settings).intact
    report = check(engine, settings, files=[read_checkpoint_file(path)])
    assert report.damage is not None and report.damage.kind == damage.REWRITTEN
    assert report.damage.until == last
