"""The ``ehr`` command line on a fresh SQLite database: ``db upgrade``, ``demo`` and ``load``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ehr import config
from ehr.cli import cli


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli' / 'ehr.db'}"
    monkeypatch.setenv("EHR_DATABASE_URL", url)
    monkeypatch.setenv("EHR_VAR_DIR", str(tmp_path / "var"))
    # Real argon2id at a small cost: ``ehr demo`` re-authenticates for every signature.
    monkeypatch.setenv("EHR_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("EHR_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("EHR_AUTH_ARGON2_PARALLELISM", "1")
    config.get_settings.cache_clear()
    yield url
    config.get_settings.cache_clear()


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def _resources(url: str, rtype: str | None = None) -> int:
    where = f" WHERE rtype = '{rtype}'" if rtype else ""
    return _count(url, f"SELECT count(*) FROM resource{where}")


def test_db_upgrade_creates_schema(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert Path(db_url.removeprefix("sqlite:///")).is_file()
    engine = sa.create_engine(db_url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"resource", "resource_version", "alembic_version"} <= names
    again = runner.invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0, again.output


def test_demo_seeds_once_with_if_empty(db_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    patients = _resources(db_url, "Patient")
    total = _resources(db_url)
    assert patients > 0
    assert _resources(db_url, "Observation") > 0
    second = runner.invoke(cli, ["demo", "--if-empty"])
    assert second.exit_code == 0, second.output
    assert _resources(db_url) == total
    # Without the flag a second run seeds again.
    third = runner.invoke(cli, ["demo"])
    assert third.exit_code == 0, third.output
    assert _resources(db_url, "Patient") == 2 * patients


def test_load_ndjson(db_url: str, tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": f"nd-{i}", "name": [{"family": f"Nd{i}"}]}
        for i in range(5)
    ]
    lines.append({"resourceType": "Observation", "id": "nd-obs", "status": "final",
                  "code": {"text": "weight"}, "subject": {"reference": "Patient/nd-1"},
                  "valueQuantity": {"value": 1.50, "unit": "kg"}})
    path = tmp_path / "data.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(cli, ["load", str(path)])
    assert result.exit_code == 0, result.output
    assert _resources(db_url, "Patient") == 5
    assert _resources(db_url, "Observation") == 1


def test_load_reports_bad_records(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "ok-1"}) + "\n"
                    + json.dumps({"resourceType": "Patient", "gender": "banana"}) + "\n"
                    + "{not json\n")
    result = CliRunner().invoke(cli, ["load", "--continue-on-error", str(path)])
    assert result.exit_code == 1, result.output
    assert _resources(db_url, "Patient") == 1


def test_no_arguments_shows_help() -> None:
    result = CliRunner().invoke(cli, [])
    assert "db" in result.output and "demo" in result.output
