"""Tables behind access decisions: care-team membership, break-the-glass grants, note grants.

``care_team_member`` is derived data: rebuilt from CareTeam and EpisodeOfCare resources by the
write hooks in ``care_teams``, plus one row per patient for the clinician who registered it.
Times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ehr.store.tables import BigKey


class CareTeamMemberRow(SQLModel, table=True):
    __tablename__ = "care_team_member"
    # No unique key: a participant named twice in one team, with two periods, has two rows.
    __table_args__ = (
        sa.Index("ix_care_team_member_member", "member", "patient_id"),
        sa.Index("ix_care_team_member_source", "source"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    patient_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # "Practitioner/<id>" for a FHIR participant, "User/<username>" for a registering user.
    member: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    # What grants it: "CareTeam/<id>", "EpisodeOfCare/<id>" or "registration".
    source: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    # The participant's period ([starts_at, ends_at), microseconds); NULL: open on that side.
    starts_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    ends_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))


class BreakGlassRow(SQLModel, table=True):
    __tablename__ = "break_glass_grant"
    __table_args__ = (
        sa.Index("ix_break_glass_grant_user", "username", "expires_at"),
        sa.Index("ix_break_glass_grant_review", "reviewed_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    username: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    patient_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    reviewed_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    reviewed_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    review_note: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class AccessGrantRow(SQLModel, table=True):
    """An authorization naming a user who may read a protected record (e.g. a PSYTHPN note)."""

    __tablename__ = "access_grant"
    __table_args__ = (sa.Index("ix_access_grant_lookup", "rtype", "rid", "grantee"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    rtype: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    rid: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    grantee: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    granted_by: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
