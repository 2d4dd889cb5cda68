"""Database tables of the resource store.

``resource`` holds the current version of every resource (content kept as canonical JSON text so
reads serve stored bytes), ``resource_version`` the immutable history (a delete is a tombstone
row), and the ``search_*`` tables one row per indexed value of the current version. Index rows
are derived data and are rewritten on every update; history rows are never changed.
Times are integer microseconds since the Unix epoch (UTC) so that comparisons and keyset paging
behave identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for long-lived keys.
BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Binary ("C") collation keeps prefix range scans on normalised strings correct under any locale.
CString = sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")
LongText = sa.Text()


def _fk() -> sa.Column:
    return sa.Column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("resource.pk", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


class ResourceRow(SQLModel, table=True):
    __tablename__ = "resource"
    __table_args__ = (
        sa.UniqueConstraint("rtype", "rid"),
        sa.Index("ix_resource_rtype_updated", "rtype", "last_updated", "pk"),
    )

    pk: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    rid: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    version_id: int = Field(nullable=False)
    last_updated: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    deleted: bool = Field(default=False, nullable=False)
    content: str | None = Field(default=None, sa_column=sa.Column(LongText, nullable=True))


class ResourceVersionRow(SQLModel, table=True):
    __tablename__ = "resource_version"
    __table_args__ = (
        sa.UniqueConstraint("rtype", "rid", "version_id"),
        sa.Index("ix_resource_version_rtype_seq", "rtype", "seq"),
        sa.Index("ix_resource_version_updated", "last_updated"),
    )

    seq: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("resource.pk"),
            nullable=False,
        )
    )
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    rid: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    version_id: int = Field(nullable=False)
    last_updated: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    method: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    deleted: bool = Field(default=False, nullable=False)
    content: str | None = Field(default=None, sa_column=sa.Column(LongText, nullable=True))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    actor_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))


class SearchString(SQLModel, table=True):
    __tablename__ = "search_string"
    __table_args__ = (sa.Index("ix_search_string_lookup", "rtype", "param", "value"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # Lower-cased, accent-stripped form for the default starts-with match.
    value: str = Field(sa_column=sa.Column(CString, nullable=False))
    exact: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))


class SearchToken(SQLModel, table=True):
    __tablename__ = "search_token"
    __table_args__ = (sa.Index("ix_search_token_lookup", "rtype", "param", "code", "system"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    system: str | None = Field(default=None, sa_column=sa.Column(sa.String(512)))
    code: str | None = Field(default=None, sa_column=sa.Column(CString))
    # Normalised display / text, for the :text modifier.
    text: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


# A token row of no search parameter (only the common parameters' names start with "_", so no
# search can ask for it): whether the actors a Consent's root provision names are permitted or
# denied, which the access rule for 42 CFR Part 2 records must know.
CONSENT_PROVISION_TYPE = "_provision-type"


class SearchDate(SQLModel, table=True):
    __tablename__ = "search_date"
    __table_args__ = (
        sa.Index("ix_search_date_low", "rtype", "param", "low"),
        sa.Index("ix_search_date_high", "rtype", "param", "high"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    low: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    high: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class SearchReference(SQLModel, table=True):
    __tablename__ = "search_reference"
    __table_args__ = (
        sa.Index("ix_search_reference_lookup", "rtype", "param", "target_id", "target_type"),
        sa.Index("ix_search_reference_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    target_type: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    target_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    # Absolute or canonical reference text when it is not a local Type/id.
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class SearchQuantity(SQLModel, table=True):
    __tablename__ = "search_quantity"
    __table_args__ = (sa.Index("ix_search_quantity_lookup", "rtype", "param", "value"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    value: float = Field(sa_column=sa.Column(sa.Float(), nullable=False))
    system: str | None = Field(default=None, sa_column=sa.Column(sa.String(512)))
    code: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    unit: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))


class SearchUri(SQLModel, table=True):
    __tablename__ = "search_uri"
    __table_args__ = (sa.Index("ix_search_uri_lookup", "rtype", "param", "uri"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    res_pk: int = Field(sa_column=_fk())
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    param: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    uri: str = Field(sa_column=sa.Column(CString, nullable=False))


INDEX_TABLES = (SearchString, SearchToken, SearchDate, SearchReference, SearchQuantity, SearchUri)
