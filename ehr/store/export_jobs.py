"""Bulk export jobs: one row per ``$export`` kick-off, shared by every worker.

A job is run by the worker that accepted it; any worker answers its status from this row, and
the files it wrote live under the export directory on a filesystem the workers share. A job
whose runner stopped heartbeating (a killed worker) is reported failed, never left "in
progress" for ever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from ehr.store.tables import BigKey


class ExportJobRow(SQLModel, table=True):
    __tablename__ = "bulk_export_job"
    __table_args__ = (sa.UniqueConstraint("job_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    job_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    owner: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    request_url: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    # "accepted" | "running" | "completed" | "failed" | "cancelled"
    state: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    level: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    # JSON: the request (types, since, patients) and, when done, the manifest's outputs.
    spec: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    output: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    progress: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    transaction_time: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    heartbeat_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    finished_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))


@dataclass(frozen=True)
class ExportJob:
    job_id: str
    owner: str
    request_url: str
    state: str
    level: str
    spec: dict[str, Any]
    output: list[dict[str, Any]] | None
    error: str | None
    progress: str | None
    transaction_time: int
    heartbeat_at: int

    @classmethod
    def of(cls, row: ExportJobRow) -> ExportJob:
        return cls(row.job_id, row.owner, row.request_url, row.state, row.level,
                   json.loads(row.spec), json.loads(row.output) if row.output else None,
                   row.error, row.progress, row.transaction_time, row.heartbeat_at)


def create(session: Session, *, job_id: str, owner: str, request_url: str, level: str,
           spec: dict[str, Any], now: int) -> ExportJob:
    row = ExportJobRow(job_id=job_id, owner=owner, request_url=request_url, state="accepted",
                       level=level, spec=json.dumps(spec), transaction_time=now,
                       created_at=now, heartbeat_at=now)
    session.add(row)
    session.flush()
    return ExportJob.of(row)


def _row(session: Session, job_id: str) -> ExportJobRow | None:
    return session.exec(select(ExportJobRow).where(ExportJobRow.job_id == job_id)).first()


def get(session: Session, job_id: str) -> ExportJob | None:
    row = _row(session, job_id)
    return ExportJob.of(row) if row is not None else None


def update(session: Session, job_id: str, *, now: int, **values: Any) -> bool:
    """Change a job unless it was cancelled meanwhile; False when it is gone or cancelled."""
    row = _row(session, job_id)
    if row is None or (row.state == "cancelled" and values.get("state") != "cancelled"):
        return False
    for key, value in values.items():
        setattr(row, key, json.dumps(value) if key == "output" else value)
    row.heartbeat_at = now
    session.add(row)
    session.flush()
    return True
