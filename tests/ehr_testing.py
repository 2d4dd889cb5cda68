"""Helpers shared by the tests (importable by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from sqlalchemy import Engine, text

import ehr.audit.tables
import ehr.auth.access_tables
import ehr.auth.tables  # noqa: F401  (every table on the metadata, for wipe)
from ehr.audit import immutability
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


def wipe(engine: Engine) -> None:
    """Empty every table; the append-only triggers are lifted for that, and put back."""
    names = [n for n in table_names() if n != "alembic_version"]
    with engine.begin() as conn:
        immutability.remove(conn)
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("INSERT INTO audit_head (id, seq, hash, checkpoint_seq, "
                          "checkpoint_time) VALUES (1, 0, :g, 0, 0)"), {"g": GENESIS})
        immutability.install(conn)


