"""``ehr user ...`` and ``ehr client ...`` commands; ``register`` adds them to the main CLI."""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.audit.recorder import AuditRecorder
from ehr.audit.sequencer import CheckpointPolicy, Sequencer
from ehr.auth.checkpoint_signing import checkpoint_signer
from ehr.auth.clients import Clients
from ehr.auth.keys import load_or_create_server_key
from ehr.auth.settings import AuthSettings
from ehr.auth.users import EventRecorder, Users
from ehr.config import Settings, get_settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import create_db_engine, unit_of_work
from ehr.errors import EhrError

EngineFactory = Callable[[Settings], Engine]
RecorderFactory = Callable[[Settings], EventRecorder | None]
CLI_AGENT = "ehr cli"
_RECORDER = "ehr_cli_recorder"


def admin_recorder(settings: Settings) -> EventRecorder:
    """The audit recorder of administration commands, signing checkpoints like the server."""
    policy = CheckpointPolicy(settings.audit_checkpoint_every_records,
                              settings.audit_checkpoint_every_minutes * 60 * 1_000_000)
    signer = checkpoint_signer(load_or_create_server_key(settings))
    return AuditRecorder(Sequencer(signer, policy), lambda: time.time_ns() // 1000)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in containers without a passwd entry
        return "unknown"


def _default_engine(settings: Settings) -> Engine:
    from ehr.store.migrate import upgrade

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings)
    upgrade(engine)
    return engine


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def register(cli: typer.Typer, *, settings_factory: Callable[[], Settings] = get_settings,
             engine_factory: EngineFactory = _default_engine,
             auth_factory: Callable[[], AuthSettings] = AuthSettings,
             recorder_factory: RecorderFactory = admin_recorder) -> None:
    """Add the ``user`` and ``client`` command groups to ``cli``.

    Every change is audited (category ``security``) in its own transaction, with the service
    as actor and the operating-system user who ran the command in the detail.
    """
    user_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
    client_cli = typer.Typer(help="System clients (SMART Backend Services).",
                             no_args_is_help=True)
    cli.add_typer(user_cli, name="user")
    cli.add_typer(client_cli, name="client")

    @contextmanager
    def session() -> Iterator[Session]:
        settings = settings_factory()
        engine = engine_factory(settings)
        recorder = recorder_factory(settings)
        try:
            with unit_of_work(engine) as s:
                s.info[_RECORDER] = recorder
                yield s
        except EhrError as err:
            typer.echo(f"error: {err.diagnostics}", err=True)
            raise typer.Exit(1) from err
        finally:
            engine.dispose()

    def audit(s: Session, interaction: str, subject_kind: str, subject: str,
              **detail: Any) -> None:
        recorder: EventRecorder | None = s.info.get(_RECORDER)
        if recorder is None:
            return
        ctx = RequestContext(actor=SYSTEM, user_agent=CLI_AGENT)
        recorder.record(s, ctx, AccessEvent(interaction, status=200, category="security",
                                            detail={"os_user": _os_user(),
                                                    subject_kind: subject, **detail}))

    @user_cli.command("create")
    def user_create(
        username: Annotated[str, typer.Argument(help="Login name (lower case)")],
        role: Annotated[list[str], typer.Option("--role", help="physician, nurse, therapist, "
                                                "compliance or admin; repeatable")],
        password_stdin: Annotated[bool, typer.Option(
            "--password-stdin", help="Read the password from the first line of stdin")] = False,
        display_name: Annotated[str, typer.Option(help="Printed name")] = "",
        npi: Annotated[str | None, typer.Option(help="NPI (physicians)")] = None,
        dea: Annotated[str | None, typer.Option(help="DEA number (physicians)")] = None,
        practitioner: Annotated[str | None, typer.Option(
            help="Linked resource, e.g. Practitioner/123")] = None,
    ) -> None:
        """Create a user; the password is prompted twice unless --password-stdin."""
        password = _read_password(password_stdin)
        users = Users(auth_factory())
        with session() as s:
            user = users.create(s, username=username, password=password, roles=role,
                                display_name=display_name, practitioner=practitioner,
                                npi=npi, dea=dea)
            audit(s, "user-created", "username", user.username, roles=sorted(user.roles),
                  practitioner=user.practitioner)
        typer.echo(f"created user {user.username} ({', '.join(sorted(user.roles))})")

    @user_cli.command("disable")
    def user_disable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
        """Disable a user: no new tokens; tokens already issued expire on their own."""
        with session() as s:
            user = Users(auth_factory()).set_active(s, username, False)
            audit(s, "user-disabled", "username", user.username)
        typer.echo(f"disabled user {user.username}")

    @user_cli.command("enable")
    def user_enable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
        """Enable a disabled user again."""
        with session() as s:
            user = Users(auth_factory()).set_active(s, username, True)
            audit(s, "user-enabled", "username", user.username)
        typer.echo(f"enabled user {user.username}")

    @user_cli.command("list")
    def user_list() -> None:
        """List users with their roles and state."""
        with session() as s:
            users = Users(auth_factory()).list(s)
        for u in users:
            state = "active" if u.active else "disabled"
            typer.echo(f"{u.username}\t{','.join(sorted(u.roles))}\t{state}\t{u.display_name}")

    @client_cli.command("create")
    def client_create(
        client_id: Annotated[str, typer.Argument(help="The client's id (iss/sub of its JWTs)")],
        jwks: Annotated[Path, typer.Option("--jwks", exists=True, dir_okay=False,
                                           readable=True, help="Public JWKS (JSON file)")],
        scope: Annotated[str, typer.Option("--scope", help='e.g. "system/Patient.rs"')],
        name: Annotated[str, typer.Option(help="Human-readable name")] = "",
    ) -> None:
        """Register a backend-services client with its public keys and allowed scopes."""
        with session() as s:
            client = Clients().create(s, client_id=client_id, jwks=jwks.read_text("utf-8"),
                                      scopes=scope, name=name)
            audit(s, "client-created", "client_id", client.client_id,
                  scopes=str(client.scopes))
        typer.echo(f"created client {client.client_id} with scopes {client.scopes}")

    @client_cli.command("disable")
    def client_disable(client_id: Annotated[str, typer.Argument()]) -> None:
        """Disable a client: its assertions are refused from now on."""
        with session() as s:
            Clients().set_active(s, client_id, False)
            audit(s, "client-disabled", "client_id", client_id)
        typer.echo(f"disabled client {client_id}")
