"""FHIR-agnostic search execution: the entry points the REST layer and services call.

Clause building lives in ``search_clauses``, sorting and keyset paging in ``search_paging``,
``_include``/``_revinclude`` in ``search_include``; this module is their public face.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ehr.store.criteria import Criterion, Restriction
from ehr.store.search_clauses import R, match_filter
from ehr.store.search_include import fetch_includes
from ehr.store.search_paging import SearchPage, execute_search

__all__ = ["SearchPage", "execute_search", "fetch_includes", "matching_pks"]


def matching_pks(
    session: Any,
    rtype: str | None,
    criteria: list[Criterion] | tuple[Criterion, ...],
    limit: int,
    restriction: Restriction | None = None,
) -> list[int]:
    """Keys of matching current resources, lowest first (conditional interactions)."""
    stmt = (sa.select(R.c.pk).where(*match_filter(rtype, criteria, R, restriction))
            .order_by(R.c.pk).limit(limit))
    return [int(pk) for pk in session.execute(stmt).scalars()]
