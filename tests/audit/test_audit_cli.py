"""``ehr audit checkpoint | verify | export`` through the real CLI on a fresh SQLite database."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audit.chain_attacks import as_owner, produce
from ehr import config
from ehr.audit.export import CSV_FIELDS
from ehr.cli import cli
from ehr.db import create_db_engine


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A migrated SQLite database with a few audited requests in it."""
    monkeypatch.setenv("EHR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli' / 'ehr.db'}")
    monkeypatch.setenv("EHR_VAR_DIR", str(tmp_path / "var"))
    config.get_settings.cache_clear()
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    settings = config.get_settings()
    engine = create_db_engine(settings)
    produce(engine, settings)
    yield engine
    engine.dispose()
    config.get_settings.cache_clear()


def _head(engine: sa.Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, digest = conn.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
    return int(seq), str(digest)


def test_checkpoint_then_verify(trail: sa.Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "outside" / "cp.json"
    made = runner.invoke(cli, ["audit", "checkpoint", "--out", str(path)])
    assert made.exit_code == 0, made.output
    seq, digest = _head(trail)
    written = json.loads(path.read_text())
    assert (written["seq"], written["hash"]) == (seq, digest)
    assert f"seq {seq}" in made.output
    ok = runner.invoke(cli, ["audit", "verify", "--checkpoint", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output and f"{seq} records checked" in ok.output
    assert f"last seq {seq}" in ok.output


def test_verify_exits_1_on_damage(trail: sa.Engine) -> None:
    with as_owner(trail) as conn:
        conn.execute(sa.text("UPDATE audit_record SET rid = 'other' WHERE seq = 2"))
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "DAMAGED: edited at seq 2" in result.output


def test_verify_usage_errors_exit_2(trail: sa.Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(bad)])
    assert result.exit_code == 2
    assert "checkpoint file" in result.output


def test_export_ndjson_verifies_without_this_code(trail: sa.Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    cp_path = tmp_path / "cp.json"
    assert runner.invoke(cli, ["audit", "checkpoint", "--out", str(cp_path)]).exit_code == 0
    out = tmp_path / "trail.ndjson"
    result = runner.invoke(cli, ["audit", "export", "--format", "ndjson", "--out", str(out)])
    assert result.exit_code == 0, result.output
    # The recipe of docs/audit.md: hashlib and json only.
    prev, expected, count = "0" * 64, 1, 0
    for line in out.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        assert rec["seq"] == expected and rec["prev_hash"] == prev
        assert hashlib.sha256((prev + "\n" + rec["body"]).encode()).hexdigest() == rec["hash"]
        assert json.loads(rec["body"])["seq"] == rec["seq"]
        prev, expected, count = rec["hash"], expected + 1, count + 1
    checkpoint = json.loads(cp_path.read_text())
    assert (expected - 1, prev) == (checkpoint["seq"], checkpoint["hash"])
    assert count == _head(trail)[0]


def test_export_csv_and_time_range(trail: sa.Engine) -> None:
    runner = CliRunner()
    full = runner.invoke(cli, ["audit", "export", "--format", "csv"])
    assert full.exit_code == 0, full.output
    rows = list(csv.DictReader(io.StringIO(full.stdout)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [int(r["seq"]) for r in rows] == list(range(1, _head(trail)[0] + 1))
    assert {r["interaction"] for r in rows} >= {"create", "read", "search-type", "update"}
    # The test's own requests, and the definitions ``ehr db upgrade`` published.
    assert {r["user_agent"] for r in rows} == {"audit-tests", "ehr db upgrade"}
    middle = rows[len(rows) // 2]["time"]
    later = runner.invoke(cli, ["audit", "export", "--format", "csv", "--from", middle])
    assert later.exit_code == 0, later.output
    kept = list(csv.DictReader(io.StringIO(later.stdout)))
    assert kept and all(r["time"] >= middle for r in kept)
    assert len(kept) == sum(1 for r in rows if r["time"] >= middle)
    before = runner.invoke(cli, ["audit", "export", "--format", "csv", "--to", middle])
    assert len(list(csv.DictReader(io.StringIO(before.stdout)))) == len(rows) - len(kept)


@pytest.mark.parametrize("args", [["--from", "yesterday"], ["--format", "xml"],
                                  ["--from", "2026-01-02", "--to", "2026-01-01"]])
def test_export_usage_errors(trail: sa.Engine, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["audit", "export", *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
