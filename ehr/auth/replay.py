"""Replay refusal: a single-use token id is recorded when consumed and refused afterwards."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ehr.auth.clock import to_micros
from ehr.auth.tables import UsedJtiRow

MAX_JTI_LENGTH = 255


def consume_jti(session: Session, *, kind: str, jti: str, issuer: str, expires_at: float,
                now: float) -> bool:
    """Record ``jti`` as used; False when it was already used (a replay).

    Rows past their expiry are purged first: the token they belonged to is refused as expired
    anyway, so the table only holds ids that could still be replayed.
    """
    if not jti or len(jti) > MAX_JTI_LENGTH:
        return False
    session.execute(delete(UsedJtiRow).where(col(UsedJtiRow.expires_at) < to_micros(now)))
    if session.exec(select(UsedJtiRow).where(UsedJtiRow.kind == kind,
                                             UsedJtiRow.jti == jti)).first() is not None:
        return False
    try:
        # A savepoint, so a concurrent insert of the same id fails here and not the whole
        # transaction (PostgreSQL aborts a transaction on any error).
        with session.begin_nested():
            session.add(UsedJtiRow(kind=kind, jti=jti, issuer=issuer,
                                   expires_at=to_micros(expires_at)))
            session.flush()
    except IntegrityError:
        return False
    return True
