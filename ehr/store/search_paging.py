"""Running a search: sorting, keyset paging, totals.

Pages are keyset-paged: a cursor carries the sort key values of the row at a page edge (plus
``pk`` as the final tie-breaker), so following next/previous links while resources are created,
changed or deleted never repeats or skips a resource whose sort values did not change.
Sorting on a multi-valued parameter uses the smallest value ascending and the largest
descending; resources without a value come last in both directions (a leading "is null" key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.errors import BadRequest
from ehr.store.criteria import Criterion, Restriction, SortKey
from ehr.store.repository import StoredResource
from ehr.store.search_clauses import TABLE_OF_KIND, R, match_filter

_SORT_COLUMN = {"string": "value", "token": "code", "date": "low", "reference": "target_id",
                "quantity": "value", "uri": "uri"}
RESOURCE_COLS = ("pk", "rtype", "rid", "version_id", "last_updated", "deleted", "content")


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[StoredResource]
    total: int | None
    next_cursor: str | None
    prev_cursor: str | None


def _sort_exprs(sort: Sequence[SortKey]) -> list[tuple[Any, bool]]:
    """(expression over R, descending) per key, ending with the pk tie-breaker."""
    keys: list[tuple[Any, bool]] = []
    for key in sort:
        if key.kind == "id":
            keys.append((R.c.rid, key.descending))
        elif key.kind == "lastUpdated":
            keys.append((R.c.last_updated, key.descending))
        else:
            table = TABLE_OF_KIND[key.kind]
            column = table.c[_SORT_COLUMN[key.kind]]
            agg = sa.func.max(column) if key.descending else sa.func.min(column)
            value = (sa.select(agg).where(table.c.res_pk == R.c.pk, table.c.param == key.param)
                     .scalar_subquery())
            keys.append((sa.case((value.is_(None), 1), else_=0), False))
            keys.append((value, key.descending))
    keys.append((R.c.pk, False))
    return keys


def _fingerprint(sort: Sequence[SortKey]) -> str:
    spec = ",".join(f"{k.param}:{k.kind}:{int(k.descending)}" for k in sort)
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def encode_cursor(direction: str, values: Sequence[Any], sort: Sequence[SortKey],
                  inclusive: bool = False) -> str:
    raw = json.dumps([_fingerprint(sort), direction, int(inclusive), list(values)],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sequence[SortKey],
                  width: int) -> tuple[str, bool, list[Any]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fingerprint, direction, inclusive, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadRequest("Invalid _cursor", expression=["_cursor"]) from exc
    if (fingerprint != _fingerprint(sort) or direction not in ("n", "p")
            or not isinstance(values, list) or len(values) != width):
        raise BadRequest("The _cursor does not belong to this search", expression=["_cursor"])
    return direction, bool(inclusive), values


def _beyond(cols: Sequence[tuple[Any, bool]], values: Sequence[Any], forward: bool,
            inclusive: bool) -> Any:
    """Rows strictly after (forward) or before the boundary in sort order (or equal to it)."""
    terms = []
    equal: list[Any] = []
    for (col, desc), value in zip(cols, values, strict=True):
        if value is None:
            # Only the value key after an "is null" flag can be NULL; NULLs are all equal here.
            equal.append(col.is_(None))
            continue
        greater = (col < value) if desc == forward else (col > value)
        terms.append(sa.and_(*equal, greater) if equal else greater)
        equal.append(col == value)
    if inclusive:
        terms.append(sa.and_(*equal))
    return sa.or_(*terms) if terms else sa.false()


def execute_search(
    session: Session,
    rtype: str | None,
    criteria: Sequence[Criterion],
    *,
    count: int,
    cursor: str | None,
    sort: Sequence[SortKey],
    with_total: bool,
    restriction: Restriction | None = None,
) -> SearchPage:
    conds = match_filter(rtype, tuple(criteria), R, restriction)
    total = None
    if with_total:
        total = int(session.execute(sa.select(sa.func.count()).select_from(R).where(*conds))
                    .scalar_one())
    if count <= 0:
        return SearchPage([], total, None, None)
    keys = _sort_exprs(sort)
    labels = [f"k{i}" for i in range(len(keys))]
    inner = sa.select(*(R.c[c] for c in RESOURCE_COLS),
                      *(expr.label(lbl) for (expr, _), lbl in zip(keys, labels, strict=True)))
    sub = inner.where(*conds).subquery()
    cols = [(sub.c[lbl], desc) for (_, desc), lbl in zip(keys, labels, strict=True)]
    direction, inclusive, boundary = "n", False, None
    if cursor:
        direction, inclusive, boundary = decode_cursor(cursor, sort, len(keys))
    forward = direction == "n"
    stmt = sa.select(*(sub.c[c] for c in RESOURCE_COLS), *(c for c, _ in cols))
    if boundary is not None:
        stmt = stmt.where(_beyond(cols, boundary, forward, inclusive))
    order = [(c.desc() if desc == forward else c.asc()) for c, desc in cols]
    result = list(session.execute(stmt.order_by(*order).limit(count + 1)).all())
    more = len(result) > count
    result = result[:count]
    if not forward:
        result.reverse()
    rows = [StoredResource(*r[: len(RESOURCE_COLS)]) for r in result]
    key_of = [list(r[len(RESOURCE_COLS):]) for r in result]
    next_cursor = prev_cursor = None
    if forward:
        if more:
            next_cursor = encode_cursor("n", key_of[-1], sort)
        if boundary is not None:
            prev_cursor = (encode_cursor("p", key_of[0], sort) if key_of
                           else encode_cursor("p", boundary, sort, inclusive=not inclusive))
    else:
        if more:
            prev_cursor = encode_cursor("p", key_of[0], sort)
        next_cursor = (encode_cursor("n", key_of[-1], sort) if key_of
                       else encode_cursor("n", boundary or [], sort, inclusive=not inclusive))
    return SearchPage(rows, total, next_cursor, prev_cursor)
