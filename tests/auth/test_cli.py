from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from auth.signing import STRONG_PASSWORD, es384_key
from ehr.auth.cli import register
from ehr.auth.clients import Clients
from ehr.auth.settings import AuthSettings
from ehr.auth.users import Users
from ehr.config import Settings
from ehr.db import unit_of_work


@pytest.fixture
def cli(engine: Engine, settings: Settings, auth_settings: AuthSettings) -> typer.Typer:
    app = typer.Typer()
    register(app, settings_factory=lambda: settings, engine_factory=lambda _s: engine,
             auth_factory=lambda: auth_settings)
    return app


def test_user_create_from_stdin_and_disable(cli: typer.Typer, engine: Engine,
                                            auth_settings: AuthSettings) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["user", "create", "Dana", "--role", "physician", "--role",
                                 "therapist", "--password-stdin", "--display-name", "Dr Dana",
                                 "--npi", "1234567893", "--practitioner", "Practitioner/d1"],
                           input=STRONG_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    users = Users(auth_settings)
    with unit_of_work(engine) as s:
        user = users.get(s, "dana")
        assert user is not None and user.roles == {"physician", "therapist"}
        assert user.practitioner == "Practitioner/d1" and user.npi == "1234567893"
        assert users.authenticate(s, "dana", STRONG_PASSWORD).ok
    result = runner.invoke(cli, ["user", "disable", "dana"])
    assert result.exit_code == 0, result.output
    with unit_of_work(engine) as s:
        assert not users.authenticate(s, "dana", STRONG_PASSWORD).ok
    listed = runner.invoke(cli, ["user", "list"])
    assert "dana" in listed.output and "disabled" in listed.output


def test_user_create_prompts_twice(cli: typer.Typer, engine: Engine,
                                   auth_settings: AuthSettings) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["user", "create", "nora", "--role", "nurse"],
                           input=f"{STRONG_PASSWORD}\n{STRONG_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert STRONG_PASSWORD not in result.output  # hidden input
    mismatch = runner.invoke(cli, ["user", "create", "nick", "--role", "nurse"],
                             input=f"{STRONG_PASSWORD}\nsomething else entirely\n")
    assert mismatch.exit_code != 0
    with unit_of_work(engine) as s:
        assert Users(auth_settings).get(s, "nick") is None


@pytest.mark.parametrize("args,stdin", [
    (["user", "create", "x1", "--role", "nurse", "--password-stdin"], "short\n"),
    (["user", "create", "x2", "--role", "wizard", "--password-stdin"], STRONG_PASSWORD + "\n"),
    (["user", "disable", "ghost"], ""),
])
def test_user_errors_exit_nonzero(cli: typer.Typer, args: list[str], stdin: str) -> None:
    result = CliRunner().invoke(cli, args, input=stdin)
    assert result.exit_code == 1
    assert "error:" in result.output


def test_client_create(cli: typer.Typer, engine: Engine, tmp_path: Path) -> None:
    key = es384_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(key.jwks_json())
    result = CliRunner().invoke(cli, ["client", "create", "analytics", "--jwks", str(jwks),
                                      "--scope", "system/Observation.rs system/Patient.read"])
    assert result.exit_code == 0, result.output
    with unit_of_work(engine) as s:
        client = Clients().get(s, "analytics")
    assert client is not None
    assert str(client.scopes) == "system/Observation.rs system/Patient.rs"
    assert client.key_for(key.kid) is not None
    bad = CliRunner().invoke(cli, ["client", "create", "other", "--jwks", str(jwks),
                                   "--scope", "user/*.rs"])
    assert bad.exit_code == 1
