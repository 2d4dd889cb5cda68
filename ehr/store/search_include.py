"""``_include`` and ``_revinclude``: the resources a page of matches references or is
referenced by (one level; ``:iterate`` is treated as one level too)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.criteria import IncludeSpec, Restriction
from ehr.store.repository import StoredResource
from ehr.store.search_clauses import REF, R
from ehr.store.search_paging import RESOURCE_COLS


def _columns(alias: Any) -> list[Any]:
    return [alias.c[c] for c in RESOURCE_COLS]


def fetch_includes(
    session: Session,
    rows: Sequence[StoredResource],
    includes: Sequence[IncludeSpec],
    revincludes: Sequence[IncludeSpec],
    restriction: Restriction | None = None,
) -> list[StoredResource]:
    """Included resources, each once, none of them already among ``rows``."""
    seen = {r.pk for r in rows}
    out: list[StoredResource] = []
    statements = [*_include_statements(rows, includes, restriction),
                  *_revinclude_statements(rows, revincludes, restriction)]
    for stmt in statements:
        for row in session.execute(stmt.order_by(stmt.selected_columns[0])).all():
            if row[0] not in seen:
                seen.add(row[0])
                out.append(StoredResource(*row))
    return out


def _include_statements(rows: Sequence[StoredResource], includes: Sequence[IncludeSpec],
                        restriction: Restriction | None) -> list[Any]:
    out = []
    for spec in includes:
        pks = [r.pk for r in rows if r.rtype == spec.source_type]
        if not pks:
            continue
        target = R.alias()
        conds = [REF.c.res_pk.in_(pks), REF.c.rtype == spec.source_type,
                 target.c.deleted.is_(False)]
        if spec.param is not None:
            conds.append(REF.c.param == spec.param)
        if spec.target_type is not None:
            conds.append(REF.c.target_type == spec.target_type)
        if restriction is not None:
            conds.append(restriction(target))
        join = REF.join(target, sa.and_(target.c.rtype == REF.c.target_type,
                                        target.c.rid == REF.c.target_id))
        out.append(sa.select(*_columns(target)).distinct().select_from(join).where(*conds))
    return out


def _revinclude_statements(rows: Sequence[StoredResource], revincludes: Sequence[IncludeSpec],
                           restriction: Restriction | None) -> list[Any]:
    by_type: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_type[r.rtype].append(r.rid)
    out = []
    for spec in revincludes:
        for rtype, rids in by_type.items():
            if spec.target_type is not None and spec.target_type != rtype:
                continue
            source = R.alias()
            conds = [REF.c.rtype == spec.source_type, REF.c.target_type == rtype,
                     REF.c.target_id.in_(rids), source.c.deleted.is_(False)]
            if spec.param is not None:
                conds.append(REF.c.param == spec.param)
            if restriction is not None:
                conds.append(restriction(source))
            join = REF.join(source, source.c.pk == REF.c.res_pk)
            out.append(sa.select(*_columns(source)).distinct().select_from(join).where(*conds))
    return out
