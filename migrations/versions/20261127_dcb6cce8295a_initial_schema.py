"""Initial schema: resource, resource_version and the search_* index tables.

Revision ID: dcb6cce8295a
Revises:
Create Date: 2026-11-27 07:54:55.992935+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "dcb6cce8295a"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in ehr/store/tables.py as they were at this revision.
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT (BIGSERIAL).
BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Binary collation on PostgreSQL so prefix range scans ignore the server locale.
C_STRING = sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column("pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("rid", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_resource")),
        sa.UniqueConstraint("rtype", "rid", name=op.f("uq_resource_rtype_rid")),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index(
            "ix_resource_rtype_updated", ["rtype", "last_updated", "pk"], unique=False
        )

    op.create_table(
        "resource_version",
        sa.Column("seq", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("rid", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_resource_version_res_pk_resource")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_resource_version")),
        sa.UniqueConstraint(
            "rtype", "rid", "version_id", name=op.f("uq_resource_version_rtype_rid_version_id")
        ),
    )
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.create_index("ix_resource_version_rtype_seq", ["rtype", "seq"], unique=False)
        batch_op.create_index("ix_resource_version_updated", ["last_updated"], unique=False)

    op.create_table(
        "search_date",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_date_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_date")),
    )
    with op.batch_alter_table("search_date", schema=None) as batch_op:
        batch_op.create_index("ix_search_date_high", ["rtype", "param", "high"], unique=False)
        batch_op.create_index("ix_search_date_low", ["rtype", "param", "low"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_date_res_pk"), ["res_pk"], unique=False)

    op.create_table(
        "search_quantity",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("system", sa.String(length=512), nullable=True),
        sa.Column("code", sa.String(length=128), nullable=True),
        sa.Column("unit", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_quantity_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_quantity")),
    )
    with op.batch_alter_table("search_quantity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_quantity_lookup", ["rtype", "param", "value"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_search_quantity_res_pk"), ["res_pk"], unique=False)

    op.create_table(
        "search_reference",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_reference_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_reference")),
    )
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_reference_lookup",
            ["rtype", "param", "target_id", "target_type"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_search_reference_res_pk"), ["res_pk"], unique=False)
        batch_op.create_index(
            "ix_search_reference_target", ["target_type", "target_id"], unique=False
        )

    op.create_table(
        "search_string",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", C_STRING, nullable=False),
        sa.Column("exact", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_string_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_string")),
    )
    with op.batch_alter_table("search_string", schema=None) as batch_op:
        batch_op.create_index("ix_search_string_lookup", ["rtype", "param", "value"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_string_res_pk"), ["res_pk"], unique=False)

    op.create_table(
        "search_token",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=512), nullable=True),
        sa.Column("code", C_STRING, nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_token_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_token")),
    )
    with op.batch_alter_table("search_token", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_token_lookup", ["rtype", "param", "code", "system"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_search_token_res_pk"), ["res_pk"], unique=False)

    op.create_table(
        "search_uri",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("res_pk", BIG_KEY, nullable=False),
        sa.Column("rtype", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("uri", C_STRING, nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_search_uri_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_uri")),
    )
    with op.batch_alter_table("search_uri", schema=None) as batch_op:
        batch_op.create_index("ix_search_uri_lookup", ["rtype", "param", "uri"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_uri_res_pk"), ["res_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_uri", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_uri_res_pk"))
        batch_op.drop_index("ix_search_uri_lookup")

    op.drop_table("search_uri")
    with op.batch_alter_table("search_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_token_res_pk"))
        batch_op.drop_index("ix_search_token_lookup")

    op.drop_table("search_token")
    with op.batch_alter_table("search_string", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_string_res_pk"))
        batch_op.drop_index("ix_search_string_lookup")

    op.drop_table("search_string")
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_search_reference_target")
        batch_op.drop_index(batch_op.f("ix_search_reference_res_pk"))
        batch_op.drop_index("ix_search_reference_lookup")

    op.drop_table("search_reference")
    with op.batch_alter_table("search_quantity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_quantity_res_pk"))
        batch_op.drop_index("ix_search_quantity_lookup")

    op.drop_table("search_quantity")
    with op.batch_alter_table("search_date", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_date_res_pk"))
        batch_op.drop_index("ix_search_date_low")
        batch_op.drop_index("ix_search_date_high")

    op.drop_table("search_date")
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_version_updated")
        batch_op.drop_index("ix_resource_version_rtype_seq")

    op.drop_table("resource_version")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_rtype_updated")

    op.drop_table("resource")
