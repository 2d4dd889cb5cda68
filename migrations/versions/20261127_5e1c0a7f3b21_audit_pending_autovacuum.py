"""audit_pending: vacuum as a queue table

Every audited request inserts into ``audit_pending`` and every seal deletes what it chained, so
the table holds a few hundred live rows and gains dead ones at the request rate. With the
default settings PostgreSQL vacuums a table once 20 % of it is dead, which for a table this
small only ever means "at the next autovacuum round": meanwhile each seal's ``ORDER BY id``
scan steps over every dead index entry. Vacuum it after a fixed number of dead rows instead,
without the cost-based pauses. SQLite has no vacuum daemon: nothing to do there.

Revision ID: 5e1c0a7f3b21
Revises: 93573c5b4877
Create Date: 2026-11-27 14:25:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '5e1c0a7f3b21'
down_revision: str | Sequence[str] | None = '93573c5b4877'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SETTINGS = ("autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, "
             "autovacuum_vacuum_insert_scale_factor = 0, "
             "autovacuum_vacuum_insert_threshold = 2000, autovacuum_vacuum_cost_delay = 0")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE audit_pending SET ({_SETTINGS})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        names = ", ".join(s.split("=")[0].strip() for s in _SETTINGS.split(","))
        op.execute(f"ALTER TABLE audit_pending RESET ({names})")
