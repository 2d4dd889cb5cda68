"""Auth tables: users, system clients and consumed single-use token ids.

Revision ID: 8b1a3bae5185
Revises: dcb6cce8295a
Create Date: 2026-11-27 08:08:35.193131+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8b1a3bae5185"
down_revision: str | Sequence[str] | None = "dcb6cce8295a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of ehr.store.tables.BigKey: SQLite only auto-increments an INTEGER PRIMARY KEY.
BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_client",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_auth_client_client_id")),
    )
    op.create_table(
        "auth_used_jti",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("issuer", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "jti", name=op.f("pk_auth_used_jti")),
    )
    op.create_index("ix_auth_used_jti_expires_at", "auth_used_jti", ["expires_at"],
                    unique=False)
    op.create_table(
        "auth_user",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("practitioner", sa.String(length=128), nullable=True),
        sa.Column("npi", sa.String(length=10), nullable=True),
        sa.Column("dea", sa.String(length=9), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_user")),
        sa.UniqueConstraint("username", name=op.f("uq_auth_user_username")),
    )


def downgrade() -> None:
    op.drop_table("auth_user")
    op.drop_index("ix_auth_used_jti_expires_at", table_name="auth_used_jti")
    op.drop_table("auth_used_jti")
    op.drop_table("auth_client")
