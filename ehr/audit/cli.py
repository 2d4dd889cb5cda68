"""``ehr audit checkpoint | verify | export``; ``register`` adds them to the main CLI.

The audit package never holds the server key: the composition root passes factories that build
the checkpoint signer and verifier from it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ehr.audit.checkpoints import (
    Checkpoint,
    CheckpointVerifier,
    read_checkpoint_file,
    take_checkpoint,
    write_checkpoint_file,
)
from ehr.audit.export import FORMATS, export, parse_instant
from ehr.audit.sealer import settle
from ehr.audit.sequencer import CheckpointPolicy, Sequencer, Signer
from ehr.audit.verify import BATCH, Report, verify_chain
from ehr.config import Settings, get_settings
from ehr.db import create_db_engine, unit_of_work
from ehr.errors import EhrError

EngineFactory = Callable[[Settings], Engine]
SignerFactory = Callable[[Settings], Signer]
VerifierFactory = Callable[[Settings], CheckpointVerifier]


def _default_engine(settings: Settings) -> Engine:
    from ehr.store.migrate import upgrade

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings)
    upgrade(engine)
    return engine


def _now_us() -> int:
    return time.time_ns() // 1000


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def register(cli: typer.Typer, *, signer_factory: SignerFactory,
             verifier_factory: VerifierFactory,
             settings_factory: Callable[[], Settings] = get_settings,
             engine_factory: EngineFactory = _default_engine,
             clock: Callable[[], int] = _now_us) -> None:
    """Add the ``audit`` command group to ``cli``."""
    audit_cli = typer.Typer(help="Audit trail: checkpoints, verification, export.",
                            no_args_is_help=True)
    cli.add_typer(audit_cli, name="audit")

    def seal_pending(settings: Settings, engine: Engine) -> None:
        """Chain what the servers' sealers have not yet, so every committed record is seen.
        A role that may not seal still verifies; the summary then counts what waits."""
        policy = CheckpointPolicy(settings.audit_checkpoint_every_records,
                                  settings.audit_checkpoint_every_minutes * 60 * 1_000_000)
        try:
            settle(engine, Sequencer(signer_factory(settings), policy), clock)
        except SQLAlchemyError as exc:
            typer.echo(f"warning: pending audit records could not be sealed: "
                       f"{exc.__class__.__name__}", err=True)

    @audit_cli.command("checkpoint")
    def checkpoint_command(
        out: Annotated[Path | None, typer.Option(
            "--out", dir_okay=False, help="Also write the checkpoint (JSON) to this file; "
            "keep it outside the database")] = None,
    ) -> None:
        """Sign the chain's current head with the server key and store the checkpoint."""
        settings = settings_factory()
        engine = engine_factory(settings)
        try:
            signer = signer_factory(settings)
            with unit_of_work(engine) as session:
                cp = take_checkpoint(session, signer, clock())
            if out is not None:
                write_checkpoint_file(out, cp)
        except EhrError as err:
            typer.echo(f"error: {err.diagnostics}", err=True)
            raise typer.Exit(1) from err
        finally:
            engine.dispose()
        where = f", written to {out}" if out is not None else ""
        typer.echo(f"checkpoint at seq {cp.seq}, hash {cp.hash}{where}")

    @audit_cli.command("verify")
    def verify_command(
        checkpoint: Annotated[list[Path] | None, typer.Option(
            "--checkpoint", dir_okay=False,
            help="A checkpoint file to check the chain against; repeatable")] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="Records per fetch")] = BATCH,
        workers: Annotated[int | None, typer.Option(
            min=0, help="Processes sharing the pass on PostgreSQL (default: one per CPU; "
            "0: the exact single-process pass only)")] = None,
    ) -> None:
        """Recompute the whole chain and check every checkpoint; exit 1 on damage."""
        files: list[Checkpoint] = []
        for path in checkpoint or []:
            try:
                files.append(read_checkpoint_file(path))
            except EhrError as err:
                raise _usage(err.diagnostics) from err
        settings = settings_factory()
        engine = engine_factory(settings)
        try:
            verifier = verifier_factory(settings)
            seal_pending(settings, engine)
            report = _verify_with_bar(engine, verifier, files, batch_size, workers)
        except EhrError as err:
            typer.echo(f"error: {err.diagnostics}", err=True)
            raise typer.Exit(2) from err
        finally:
            engine.dispose()
        typer.echo(report.summary())
        if not report.intact:
            raise typer.Exit(1)

    @audit_cli.command("export")
    def export_command(
        start: Annotated[str | None, typer.Option(
            "--from", help="ISO 8601 date or date-time (UTC unless an offset is given); "
            "inclusive")] = None,
        end: Annotated[str | None, typer.Option(
            "--to", help="ISO 8601 date or date-time; exclusive")] = None,
        fmt: Annotated[str, typer.Option(
            "--format", help=f"One of {', '.join(FORMATS)}")] = "ndjson",
        out: Annotated[Path | None, typer.Option(
            "--out", dir_okay=False, help="Write here instead of standard output")] = None,
    ) -> None:
        """Stream audit records: NDJSON (verifiable elsewhere) or CSV (one column per field)."""
        if fmt not in FORMATS:
            raise _usage(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        try:
            lower = parse_instant(start) if start else None
            upper = parse_instant(end) if end else None
        except EhrError as err:
            raise _usage(err.diagnostics) from err
        settings = settings_factory()
        engine = engine_factory(settings)
        try:
            seal_pending(settings, engine)
            with engine.connect() as conn:
                if out is None:
                    count = export(conn, sys.stdout, fmt, start=lower, end=upper)
                    sys.stdout.flush()
                else:
                    with out.open("w", encoding="utf-8", newline="") as stream:
                        count = export(conn, stream, fmt, start=lower, end=upper)
        except EhrError as err:
            raise _usage(err.diagnostics) from err
        finally:
            engine.dispose()
        typer.echo(f"exported {count} records", err=True)


def _verify_with_bar(engine: Engine, verifier: CheckpointVerifier, files: list[Checkpoint],
                     batch_size: int, workers: int | None) -> Report:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    quiet = not sys.stderr.isatty() and not os.environ.get("EHR_PROGRESS")
    with Progress("verifying", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=quiet) as bar:
        task = bar.add_task("verify", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return verify_chain(engine, verifier, checkpoints=files, batch_size=batch_size,
                            progress=progress, workers=workers)
