"""Audit trail tables.

``audit_record`` is append-only (the database refuses UPDATE, DELETE and TRUNCATE, see
``immutability``). ``body`` is the record's canonical JSON (``canonical``) and the chain is
``hash = SHA-256(prev_hash || "\\n" || body)``; the other columns repeat fields of the body so
compliance can search them, and ``ehr audit verify`` checks that they still agree with it.
``audit_head`` is the one row the sealer locks: the serial point of the chain.

Requests do not touch the chain: their records go to ``audit_pending`` (committed with the
request, unnumbered) and the sealer (``sequencer``) moves them into ``audit_record`` in batches,
numbered and chained. A pending row can leave its table only into the chain, verbatim
(``immutability``); ``audit_record.pending_id`` names the row a record was sealed from.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ehr.store.tables import BigKey  # also: the naming convention on the shared metadata


class AuditColumns(SQLModel):
    """The searchable columns a record has both while pending and once chained."""

    time: int = Field(sa_type=sa.BigInteger(), nullable=False)
    category: str = Field(sa_type=sa.String(16), nullable=False)
    interaction: str = Field(sa_type=sa.String(64), nullable=False)
    outcome: str = Field(sa_type=sa.String(16), nullable=False)
    status: int = Field(nullable=False)
    actor_id: str | None = Field(default=None, sa_type=sa.String(128))
    actor_kind: str | None = Field(default=None, sa_type=sa.String(16))
    rtype: str | None = Field(default=None, sa_type=sa.String(64))
    rid: str | None = Field(default=None, sa_type=sa.String(64))
    version_id: int | None = Field(default=None)
    request_id: str | None = Field(default=None, sa_type=sa.String(64))
    purpose: str | None = Field(default=None, sa_type=sa.String(16))
    protected: bool = Field(default=False, nullable=False)


class AuditRecordRow(AuditColumns, table=True):
    __tablename__ = "audit_record"
    __table_args__ = (
        sa.Index("ix_audit_record_time", "time"),
        sa.Index("ix_audit_record_actor", "actor_id", "time"),
        sa.Index("ix_audit_record_entity", "rtype", "rid"),
        sa.Index("ix_audit_record_interaction", "interaction", "time"),
        sa.Index("ix_audit_record_pending", "pending_id", unique=True),
    )

    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True,
                                         autoincrement=False))
    body: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    prev_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # Not hashed: the audit_pending row this record was sealed from (null when appended inline).
    pending_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))


class AuditPendingRow(AuditColumns, table=True):
    """A committed record waiting for its number: the searchable columns, the canonical body
    cut around ``seq`` (``canonical.split``) and the patients as a JSON array."""

    __tablename__ = "audit_pending"
    # Ids are never reused (SQLite would reuse the highest after a delete): pending_id is unique.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    body_head: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    body_tail: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    patients: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class AuditPatientRow(SQLModel, table=True):
    """One row per patient an audit record concerns (every patient a search returned)."""

    __tablename__ = "audit_patient"
    __table_args__ = (sa.Index("ix_audit_patient_patient", "patient_id", "seq"),)

    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True,
                                         autoincrement=False))
    patient_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))


class AuditHeadRow(SQLModel, table=True):
    """The chain's head: locked by every seal, so sequence numbers have no forks or gaps."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=sa.Column(sa.Integer(), primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    checkpoint_seq: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False))
    checkpoint_time: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(),
                                                                 nullable=False))


class AuditCheckpointRow(SQLModel, table=True):
    """A signed statement of the chain's head: ``jws`` signs {seq, hash, time}."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True,
                                         autoincrement=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    time: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    jws: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
