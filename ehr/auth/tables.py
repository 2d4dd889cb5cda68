"""Database tables of the identity layer: users, system clients, consumed token ids.

Times are integer microseconds since the Unix epoch (UTC), as in the resource store.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Imported for its side effect: the constraint naming convention on the shared metadata.
from ehr.store.tables import BigKey


class UserRow(SQLModel, table=True):
    __tablename__ = "auth_user"
    __table_args__ = (sa.UniqueConstraint("username"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    username: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    display_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    # Space-separated role names; a handful of fixed values, never queried by SQL.
    roles: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    active: bool = Field(default=True, nullable=False)
    practitioner: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    npi: str | None = Field(default=None, sa_column=sa.Column(sa.String(10)))
    dea: str | None = Field(default=None, sa_column=sa.Column(sa.String(9)))
    password_hash: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    failed_attempts: int = Field(default=0, nullable=False)
    locked_until: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    updated_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))

    def role_names(self) -> frozenset[str]:
        return frozenset(self.roles.split())


class ClientRow(SQLModel, table=True):
    """A system client (SMART Backend Services) with its public JWKS and allowed scopes."""

    __tablename__ = "auth_client"
    __table_args__ = (sa.UniqueConstraint("client_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    client_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    jwks: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    scopes: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    active: bool = Field(default=True, nullable=False)
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    updated_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class UsedJtiRow(SQLModel, table=True):
    """A consumed single-use token id (client assertion, signing assertion), kept until expiry.

    The primary key makes a replay fail on insert even when two requests race.
    """

    __tablename__ = "auth_used_jti"
    __table_args__ = (sa.Index("ix_auth_used_jti_expires_at", "expires_at"),)

    kind: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    jti: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    issuer: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
