"""``ehr care-team add PATIENT USERNAME`` on a fresh SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ehr import config
from ehr.cli import cli
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer

PASSWORD = "correct horse battery staple\n"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli' / 'ehr.db'}"
    monkeypatch.setenv("EHR_DATABASE_URL", url)
    monkeypatch.setenv("EHR_VAR_DIR", str(tmp_path / "var"))
    config.get_settings.cache_clear()
    yield url
    config.get_settings.cache_clear()


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _new_patient(url: str) -> str:
    engine = _engine(url)
    try:
        with unit_of_work(engine) as session:
            writer = Writer(Pipeline(config.get_settings()), session, RequestContext(SYSTEM))
            stored = writer.create("Patient", {"resourceType": "Patient",
                                               "name": [{"family": "Cli"}]}).stored
            assert stored is not None
            return stored.rid
    finally:
        engine.dispose()


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _create_user(runner: CliRunner, name: str) -> None:
    result = runner.invoke(cli, ["user", "create", name, "--role", "physician",
                                 "--display-name", f"Dr {name.title()} Smith",
                                 "--password-stdin"], input=PASSWORD)
    assert result.exit_code == 0, result.output


def _clinic(db_url: str, *users: str) -> tuple[CliRunner, str]:
    """A migrated database with these physicians and one patient: the runner and its id."""
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    for name in users:
        _create_user(runner, name)
    return runner, _new_patient(db_url)


def test_care_team_add(db_url: str) -> None:
    runner, pid = _clinic(db_url, "alice", "bob")

    first = runner.invoke(cli, ["care-team", "add", pid, "alice"])
    assert first.exit_code == 0, first.output
    (practitioner,), = _rows(db_url, "SELECT practitioner FROM auth_user WHERE username='alice'")
    assert str(practitioner).startswith("Practitioner/")
    members = _rows(db_url, f"SELECT member FROM care_team_member WHERE patient_id='{pid}'")
    assert members == [(practitioner,)]

    # Again (idempotent), with the Patient/ prefix, and a second user on the same team.
    assert runner.invoke(cli, ["care-team", "add", f"Patient/{pid}", "alice"]).exit_code == 0
    assert runner.invoke(cli, ["care-team", "add", pid, "bob"]).exit_code == 0
    teams = _rows(db_url, "SELECT content FROM resource WHERE rtype='CareTeam'")
    assert len(teams) == 1
    team = json.loads(str(teams[0][0]))
    assert team["subject"] == {"reference": f"Patient/{pid}"}
    assert len(team["participant"]) == 2
    members = _rows(db_url, f"SELECT member FROM care_team_member WHERE patient_id='{pid}'")
    assert len(members) == 2 and (practitioner,) in members


def test_care_team_add_refuses_unknown_patient_and_user(db_url: str) -> None:
    runner, pid = _clinic(db_url, "carol")
    unknown_patient = runner.invoke(cli, ["care-team", "add", "no-such-patient", "carol"])
    assert unknown_patient.exit_code == 1
    assert "no-such-patient" in unknown_patient.output
    unknown_user = runner.invoke(cli, ["care-team", "add", pid, "nobody"])
    assert unknown_user.exit_code == 1
    assert "nobody" in unknown_user.output
    assert _rows(db_url, "SELECT count(*) FROM care_team_member") == [(0,)]


def test_care_team_remove(db_url: str) -> None:
    runner, pid = _clinic(db_url, "dora", "erin")
    assert runner.invoke(cli, ["care-team", "add", pid, "dora"]).exit_code == 0
    assert runner.invoke(cli, ["care-team", "add", pid, "erin"]).exit_code == 0

    removed = runner.invoke(cli, ["care-team", "remove", f"Patient/{pid}", "dora"])
    assert removed.exit_code == 0, removed.output
    assert "CareTeam/" in removed.output
    (practitioner,), = _rows(db_url, "SELECT practitioner FROM auth_user WHERE username='erin'")
    members = _rows(db_url, f"SELECT member FROM care_team_member WHERE patient_id='{pid}'")
    assert members == [(practitioner,)]
    [(detail,)] = _rows(db_url, "SELECT body FROM audit_record "
                                "WHERE interaction = 'care-team-member-removed'")
    assert '"member":"dora"' in str(detail)

    again = runner.invoke(cli, ["care-team", "remove", pid, "dora"])
    assert again.exit_code == 1 and "not on a care team" in again.output
    unknown = runner.invoke(cli, ["care-team", "remove", pid, "nobody"])
    assert unknown.exit_code == 1 and "nobody" in unknown.output
