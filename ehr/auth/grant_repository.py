"""SQL for note grants: the authorizations naming a user who may read a PSYTHPN record.

``psychotherapy_clause`` in ``access_repository`` reads these rows on every query; this module
writes them and answers who holds one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from ehr.auth.access_tables import AccessGrantRow
from ehr.store.tables import ResourceRow, SearchReference

G = AccessGrantRow.__table__  # type: ignore[attr-defined]
R = ResourceRow.__table__  # type: ignore[attr-defined]
REF = SearchReference.__table__  # type: ignore[attr-defined]


def grantees(session: Session, rtype: str, rid: str) -> set[str]:
    rows = session.execute(sa.select(G.c.grantee).where(
        G.c.rtype == rtype, G.c.rid == rid, G.c.revoked_at.is_(None)))
    return {r[0] for r in rows}


def add_grant(session: Session, *, rtype: str, rid: str, grantee: str, granted_by: str,
              reason: str, now: int) -> bool:
    """Grant unless an active grant exists already; True when a row was added."""
    if grantee in grantees(session, rtype, rid):
        return False
    session.execute(sa.insert(G).values(rtype=rtype, rid=rid, grantee=grantee,
                                        granted_by=granted_by, reason=reason, created_at=now))
    return True


def revoke_grants(session: Session, *, rtype: str, rid: str, grantee: str, now: int) -> int:
    result = session.execute(sa.update(G).where(
        G.c.rtype == rtype, G.c.rid == rid, G.c.grantee == grantee, G.c.revoked_at.is_(None))
        .values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def referring(session: Session, target_type: str, target_id: str,
              sources: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Live records of (type, reference parameter) ``sources`` that point at the target."""
    clauses = [sa.and_(REF.c.rtype == t, REF.c.param == p) for t, p in sources]
    rows = session.execute(
        sa.select(R.c.rtype, R.c.rid).distinct().select_from(REF.join(R, R.c.pk == REF.c.res_pk))
        .where(REF.c.target_type == target_type, REF.c.target_id == target_id,
               sa.or_(*clauses), R.c.deleted.is_(False)))
    return [(r[0], r[1]) for r in rows]
