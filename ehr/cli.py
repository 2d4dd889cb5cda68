"""The ``ehr`` command line: serve, database upgrades, bulk loading and demo data."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ehr.audit.cli import register as register_audit
from ehr.auth.checkpoint_signing import checkpoint_signer, checkpoint_verifier
from ehr.auth.cli import register as register_auth
from ehr.auth.keys import load_or_create_server_key
from ehr.config import Settings, get_settings
from ehr.context import SYSTEM, RequestContext

cli = typer.Typer(help="ehr: FHIR R4 record service for ketamine-assisted therapy programs.",
                  no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="Database schema commands.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
care_team_cli = typer.Typer(help="Care-team membership.", no_args_is_help=True)
cli.add_typer(care_team_cli, name="care-team")
register_auth(cli)
register_audit(cli, signer_factory=lambda s: checkpoint_signer(load_or_create_server_key(s)),
               verifier_factory=lambda s: checkpoint_verifier(load_or_create_server_key(s)))


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from ehr.db import create_db_engine

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return create_db_engine(settings)


def _upgrade(settings: Settings) -> None:
    from ehr.app import build_pipeline
    from ehr.fhir.definitions_loader import publish_definitions
    from ehr.store.migrate import upgrade

    engine = _engine(settings)
    try:
        upgrade(engine)
        # The shipped Questionnaires and CodeSystems (unchanged ones are left alone).
        publish_definitions(engine, build_pipeline(settings))
    finally:
        engine.dispose()


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (creates the SQLite file under var/ if needed)."""
    settings = get_settings()
    _upgrade(settings)
    typer.echo("database is at the latest schema")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Apply migrations, then serve the API with uvicorn."""
    import uvicorn

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _upgrade(settings)
    uvicorn.run("ehr.app:app_factory", factory=True, host=host, port=port, workers=workers,
                reload=reload, log_level=settings.log_level, access_log=False,
                proxy_headers=True)


@cli.command()
def load(
    files: Annotated[list[Path], typer.Argument(help="Bundles, resources or NDJSON files",
                                                exists=True, dir_okay=False, readable=True)],
    batch_size: Annotated[int, typer.Option(help="Resources per transaction for NDJSON")] = 500,
    continue_on_error: Annotated[bool, typer.Option(help="Report bad records and go on")] = False,
) -> None:
    """Load FHIR data through the same write path as the API, with a progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeElapsedColumn

    from ehr.app import build_pipeline
    from ehr.fhir.loader import LoadFailed, load_file
    from ehr.store.schema import refresh_statistics

    settings = get_settings()
    _upgrade(settings)
    engine = _engine(settings)
    pipeline = build_pipeline(settings)
    ctx = RequestContext(actor=SYSTEM, user_agent="ehr load")
    failed = 0
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  "{task.fields[records]} records", TimeElapsedColumn(),
                  disable=not sys.stderr.isatty() and not os.environ.get("EHR_PROGRESS")) as bar:
        for path in files:
            task = bar.add_task(path.name, total=path.stat().st_size, records=0)

            def progress(done: int, read: int, task: TaskID = task) -> None:
                bar.update(task, completed=read, records=done)

            try:
                report = load_file(engine, pipeline, ctx, path, batch_size=batch_size,
                                   progress=progress, continue_on_error=continue_on_error)
            except LoadFailed as err:
                bar.stop()
                typer.echo(err.diagnostics, err=True)
                engine.dispose()
                raise typer.Exit(code=1) from err
            bar.update(task, completed=path.stat().st_size)
            typer.echo(f"{path}: {report.created} created, {report.updated} updated, "
                       f"{report.failed} failed")
            for problem in report.errors:
                typer.echo(f"  {problem}", err=True)
            failed += report.failed
    refresh_statistics(engine)
    engine.dispose()
    if failed:
        raise typer.Exit(code=1)


def _care_team_change(command: str, change: Callable[[Any, Any, RequestContext], str]) -> str:
    """Run ``change(pipeline, session, ctx)`` in one transaction as the service; an EhrError
    becomes the command's error message and exit status 1."""
    from ehr.app import build_pipeline
    from ehr.db import unit_of_work
    from ehr.errors import EhrError

    settings = get_settings()
    _upgrade(settings)
    engine = _engine(settings)
    ctx = RequestContext(actor=SYSTEM, user_agent=f"ehr care-team {command}")
    try:
        with unit_of_work(engine) as session:
            return change(build_pipeline(settings), session, ctx)
    except EhrError as err:
        typer.echo(f"error: {err.diagnostics}", err=True)
        raise typer.Exit(1) from err
    finally:
        engine.dispose()


@care_team_cli.command("add")
def care_team_add(
    patient_id: Annotated[str, typer.Argument(help="Patient id (without 'Patient/')")],
    username: Annotated[str, typer.Argument(help="The user to add")],
) -> None:
    """Add a user to a patient's care team (as a participant of its CareTeam resource)."""
    from ehr.auth.users import Users
    from ehr.fhir.care_team_admin import add_to_care_team

    pid = patient_id.removeprefix("Patient/")
    team = _care_team_change("add", lambda pipeline, session, ctx: add_to_care_team(
        pipeline, session, ctx, Users(), pid, username))
    typer.echo(f"{username} is on the care team of Patient/{pid} (CareTeam/{team})")


@care_team_cli.command("remove")
def care_team_remove(
    patient_id: Annotated[str, typer.Argument(help="Patient id (without 'Patient/')")],
    member: Annotated[str, typer.Argument(
        help="A user name, or a member reference such as Practitioner/123")],
) -> None:
    """Take a member off every CareTeam of a patient and end the membership registering the
    patient gave them (audited as care-team-member-removed)."""
    from ehr.audit.events import AccessEvent
    from ehr.auth.users import Users
    from ehr.fhir.care_team_admin import remove_from_care_team

    pid = patient_id.removeprefix("Patient/")

    def remove(pipeline: Any, session: Any, ctx: RequestContext) -> str:
        changed = remove_from_care_team(pipeline, session, ctx, Users(), pid, member)
        pipeline.recorder.record(session, ctx, AccessEvent(
            "care-team-member-removed", status=200, category="security", patients=(pid,),
            detail={"patient": pid, "member": member, "changed": changed}))
        return ", ".join(changed)

    changed = _care_team_change("remove", remove)
    typer.echo(f"{member} is off the care team of Patient/{pid} ({changed})")


@cli.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only seed an empty database")
    ] = False,
) -> None:
    """Seed a demonstration clinic (accounts, 12 patients, sessions, ledger) through the
    real services."""
    from ehr.demo import seed_demo

    settings = get_settings()
    _upgrade(settings)
    engine = _engine(settings)
    try:
        summary = seed_demo(engine, settings, only_if_empty=if_empty)
    finally:
        engine.dispose()
    typer.echo(summary)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
