"""Helpers shared by the tests (importable by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

import ehr.audit.tables
import ehr.auth.access_tables
import ehr.auth.tables
import ehr.clinical.ledger.tables  # noqa: F401  (every table on the metadata, for wipe)
from ehr.audit import immutability, sealer
from ehr.audit.canonical import GENESIS
from ehr.store.schema import table_names

BASE = "http://testserver/fhir"


def bearer(  # type: ignore[no-untyped-def]
    app, *, subject: str, kind: str, scopes: str, roles: tuple[str, ...] = (),
    practitioner: str | None = None,
) -> dict[str, str]:
    """An Authorization header with a token the app's own key signed."""
    from ehr.auth.scopes import ScopeSet

    auth = app.state.auth
    token = auth.tokens.issue(auth.urls(BASE), subject=subject, kind=kind,
                              scopes=ScopeSet.parse(scopes), roles=frozenset(roles),
                              display=subject, practitioner=practitioner)
    return {"Authorization": f"Bearer {token.access_token}"}


def sealed(engine: Engine, app: Any = None) -> Engine:
    """Chain the audit records still pending and return ``engine``.

    On PostgreSQL the server's sealer chains records a few milliseconds after their request
    committed; a test that reads ``audit_record`` with SQL calls this first. With ``app`` its
    recorder seals (signing checkpoints when due, as the server does).
    """
    if app is not None:
        app.state.pipeline.recorder.seal_now(engine)
    elif engine.dialect.name == "postgresql":
        from ehr.audit.sealer import settle
        from ehr.audit.sequencer import Sequencer
        from ehr.instants import now_us

        settle(engine, Sequencer(), now_us)
    return engine


def wipe(engine: Engine) -> None:
    """Empty every table; the append-only triggers are lifted for that, and put back."""
    names = [n for n in table_names() if n != "alembic_version"]
    # An earlier test's app may still have its sealer thread reading the audit tables; the
    # TRUNCATE below would deadlock with it.
    sealer.pause_all()
    with engine.begin() as conn:
        others = immutability.other_tables(conn)
        immutability.remove_tables(conn, others)
        immutability.remove(conn)
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("INSERT INTO audit_head (id, seq, hash, checkpoint_seq, "
                          "checkpoint_time) VALUES (1, 0, :g, 0, 0)"), {"g": GENESIS})
        immutability.install(conn)
        immutability.install_tables(conn, others)


