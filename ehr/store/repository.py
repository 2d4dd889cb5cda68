"""SQL for versioned resources: current rows, history rows, optimistic version bumps."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.criteria import Restriction
from ehr.store.tables import ResourceRow, ResourceVersionRow

R = ResourceRow.__table__  # type: ignore[attr-defined]
V = ResourceVersionRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One stored version: what the read path serves (content is canonical JSON text)."""

    pk: int
    rtype: str
    rid: str
    version_id: int
    last_updated: int
    deleted: bool
    content: str | None
    method: str = ""
    seq: int = 0


_CURRENT_COLS = (R.c.pk, R.c.rtype, R.c.rid, R.c.version_id, R.c.last_updated, R.c.deleted,
                 R.c.content)
_VERSION_COLS = (V.c.res_pk, V.c.rtype, V.c.rid, V.c.version_id, V.c.last_updated, V.c.deleted,
                 V.c.content, V.c.method, V.c.seq)

_select_current = sa.select(*_CURRENT_COLS).where(R.c.rtype == sa.bindparam("t"),
                                                  R.c.rid == sa.bindparam("i"))


def current_from_row(row: Sequence[object]) -> StoredResource:
    return StoredResource(*row)  # type: ignore[arg-type]


def current_where(clause: Any) -> sa.Select[Any]:
    """The current row of ``rtype``/``rid`` (binds ``ehr_t``, ``ehr_i``) under a filter over
    the ``resource`` table: one round trip for a read that access control also filters."""
    return sa.select(*_CURRENT_COLS).where(
        R.c.rtype == sa.bindparam("ehr_t"), R.c.rid == sa.bindparam("ehr_i"), clause)


def fetch_one(session: Session, statement: sa.Select[Any], params: dict[str, Any]
              ) -> StoredResource | None:
    row = session.execute(statement, params).first()
    return StoredResource(*row[:7]) if row else None


def get_current(
    session: Session, rtype: str, rid: str, *, lock: bool = False
) -> StoredResource | None:
    stmt = _select_current.with_for_update() if lock else _select_current
    row = session.execute(stmt, {"t": rtype, "i": rid}).first()
    return StoredResource(*row) if row else None


def get_current_by_pks(session: Session, pks: Sequence[int]) -> list[StoredResource]:
    """Rows for the given keys, in the order given."""
    if not pks:
        return []
    rows = session.execute(sa.select(*_CURRENT_COLS).where(R.c.pk.in_(list(pks)))).all()
    by_pk = {r[0]: StoredResource(*r) for r in rows}
    return [by_pk[p] for p in pks if p in by_pk]


def get_version(session: Session, rtype: str, rid: str, version_id: int) -> StoredResource | None:
    row = session.execute(
        sa.select(*_VERSION_COLS).where(
            V.c.rtype == rtype, V.c.rid == rid, V.c.version_id == version_id
        )
    ).first()
    return StoredResource(*row) if row else None


def creator_of(session: Session, rtype: str, rid: str) -> str | None:
    """Who wrote version 1 (the actor id the write path recorded): a note's author."""
    return session.execute(sa.select(V.c.actor_id).where(
        V.c.rtype == rtype, V.c.rid == rid, V.c.version_id == 1)).scalar_one_or_none()


def insert_resource(
    session: Session, rtype: str, rid: str, content: str, last_updated: int
) -> int:
    """Insert the current row of a new resource (version 1); returns its key."""
    result = session.execute(
        sa.insert(R).returning(R.c.pk),
        {"rtype": rtype, "rid": rid, "version_id": 1, "last_updated": last_updated,
         "deleted": False, "content": content},
    )
    return int(result.scalar_one())


def bump_current(
    session: Session,
    pk: int,
    expected_version: int,
    *,
    content: str | None,
    last_updated: int,
    deleted: bool,
) -> bool:
    """Move the current row to the next version only if it is still at ``expected_version``.

    The compare-and-set is what makes two concurrent updates with the same If-Match resolve to
    exactly one winner on both databases.
    """
    result = session.execute(
        sa.update(R)
        .where(R.c.pk == pk, R.c.version_id == expected_version)
        .values(version_id=expected_version + 1, content=content, last_updated=last_updated,
                deleted=deleted)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def append_version(
    session: Session,
    *,
    res_pk: int,
    rtype: str,
    rid: str,
    version_id: int,
    last_updated: int,
    method: str,
    content: str | None,
    request_id: str | None,
    actor_id: str | None,
) -> int:
    result = session.execute(
        sa.insert(V).returning(V.c.seq),
        {"res_pk": res_pk, "rtype": rtype, "rid": rid, "version_id": version_id,
         "last_updated": last_updated, "method": method, "deleted": content is None,
         "content": content, "request_id": request_id, "actor_id": actor_id},
    )
    return int(result.scalar_one())


def history(
    session: Session,
    *,
    rtype: str | None = None,
    rid: str | None = None,
    since: int | None = None,
    at: int | None = None,
    before_seq: int | None = None,
    after_seq: int | None = None,
    limit: int = 50,
    restriction: Restriction | None = None,
) -> list[StoredResource]:
    """Versions newest first, keyset-paged on the global sequence so pages stay stable.

    ``restriction`` filters on the resource's current row (access control).
    """
    stmt = _history_filter(sa.select(*_VERSION_COLS), rtype, rid, since, at, restriction)
    if after_seq is not None:
        # Paging backwards: the page just above ``after_seq``, returned newest first.
        rows = session.execute(
            stmt.where(V.c.seq > after_seq).order_by(V.c.seq.asc()).limit(limit)
        ).all()
        return [StoredResource(*r) for r in reversed(rows)]
    if before_seq is not None:
        stmt = stmt.where(V.c.seq < before_seq)
    rows = session.execute(stmt.order_by(V.c.seq.desc()).limit(limit)).all()
    return [StoredResource(*r) for r in rows]


def history_count(
    session: Session, *, rtype: str | None = None, rid: str | None = None,
    since: int | None = None, at: int | None = None, restriction: Restriction | None = None,
) -> int:
    stmt = _history_filter(sa.select(sa.func.count()).select_from(V), rtype, rid, since, at,
                           restriction)
    return int(session.execute(stmt).scalar_one())


def _history_filter(
    stmt: sa.Select[Any], rtype: str | None, rid: str | None, since: int | None,
    at: int | None, restriction: Restriction | None,
) -> sa.Select[Any]:
    if restriction is not None:
        stmt = stmt.join(R, R.c.pk == V.c.res_pk).where(restriction(R))
    if rtype is not None:
        stmt = stmt.where(V.c.rtype == rtype)
    if rid is not None:
        stmt = stmt.where(V.c.rid == rid)
    if since is not None:
        stmt = stmt.where(V.c.last_updated >= since)
    if at is not None:
        stmt = stmt.where(V.c.last_updated <= at)
    return stmt


def lock_key(session: Session, key: str) -> None:
    """Hold a transaction-scoped lock on ``key`` until commit (PostgreSQL advisory lock).

    SQLite needs none: a writing unit of work already holds the database's one write lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": int.from_bytes(digest, "big", signed=True)})
