"""care_team_member: the participant's period; stored CareTeams' memberships rebuilt

A CareTeam participant with a ``period`` is a member only inside it; until now the period was
not read, so a clinician whose period had ended kept access. The membership rows get
``starts_at``/``ends_at`` (NULL: open on that side) and lose their unique key (a participant
named twice with two periods has two rows), and the rows of every stored CareTeam are rebuilt
with today's rules (which also stops suspended teams granting access: that rule was
applied only when a team was next written).

The rows come from the write hook's own pure functions (``care_team_members``,
``membership_rows``) and are written with plain SQL naming their columns.

Revision ID: e7d3b1c9a2f4
Revises: c4f2a9d0e6b7
Create Date: 2026-11-27 18:00:00.000000+00:00
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ehr.auth.access_repository import membership_rows
from ehr.auth.care_teams import care_team_members

revision: str = 'e7d3b1c9a2f4'
down_revision: str | Sequence[str] | None = 'c4f2a9d0e6b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("patient_id", "member", "source", "created_at", "starts_at", "ends_at")
_UNIQUE = "uq_care_team_member_patient_id_member_source"


def upgrade() -> None:
    with op.batch_alter_table("care_team_member") as batch:
        batch.add_column(sa.Column("starts_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("ends_at", sa.BigInteger(), nullable=True))
        batch.drop_constraint(_UNIQUE, type_="unique")
    bind = op.get_bind()
    now = int(time.time() * 1_000_000)
    teams = bind.execute(sa.text(
        "SELECT rid, content FROM resource WHERE rtype = 'CareTeam' AND NOT deleted "
        "AND content IS NOT NULL")).all()
    for rid, content in teams:
        source = f"CareTeam/{rid}"
        bind.execute(sa.text("DELETE FROM care_team_member WHERE source = :source"),
                     {"source": source})
        rows = membership_rows(source, care_team_members(json.loads(content)), now)
        if rows:
            bind.execute(sa.text(
                f"INSERT INTO care_team_member ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _COLUMNS)})"), rows)


def downgrade() -> None:
    # One row per (patient, member, source) again: the earliest of each group stays.
    op.execute("DELETE FROM care_team_member WHERE id NOT IN (SELECT min(id) FROM "
               "care_team_member GROUP BY patient_id, member, source)")
    with op.batch_alter_table("care_team_member") as batch:
        batch.create_unique_constraint(_UNIQUE, ["patient_id", "member", "source"])
        batch.drop_column("ends_at")
        batch.drop_column("starts_at")
