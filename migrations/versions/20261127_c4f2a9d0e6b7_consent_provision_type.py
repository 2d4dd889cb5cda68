"""Consent: index whether the root provision permits or denies

The access rule for 42 CFR Part 2 records discloses them to a system client only under a
Consent that *permits* it; until now it looked at the Consent's status, patient and actor only,
so a Consent denying the client opened the records as well. The rule now needs a
``_provision-type`` token row per Consent (written by the indexer from this revision on); this
adds it for the Consents already stored. A Consent without a root ``provision.type`` gets no
row and permits nothing.

Revision ID: c4f2a9d0e6b7
Revises: 5e1c0a7f3b21
Create Date: 2026-11-27 17:30:00.000000+00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c4f2a9d0e6b7'
down_revision: str | Sequence[str] | None = '5e1c0a7f3b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARAM = "_provision-type"


def upgrade() -> None:
    bind = op.get_bind()
    consents = bind.execute(sa.text(
        "SELECT pk, content FROM resource WHERE rtype = 'Consent' AND NOT deleted "
        "AND content IS NOT NULL"))
    rows = []
    for pk, content in consents:
        provision = json.loads(content).get("provision")
        kind = provision.get("type") if isinstance(provision, dict) else None
        if isinstance(kind, str):
            rows.append({"res_pk": pk, "code": kind})
    if rows:
        bind.execute(sa.text(
            "INSERT INTO search_token (res_pk, rtype, param, code) "
            f"VALUES (:res_pk, 'Consent', '{_PARAM}', :code)"), rows)


def downgrade() -> None:
    op.execute(f"DELETE FROM search_token WHERE rtype = 'Consent' AND param = '{_PARAM}'")
