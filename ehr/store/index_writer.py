"""Writing the search index rows of one resource's current version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.tables import (
    INDEX_TABLES,
    SearchDate,
    SearchQuantity,
    SearchReference,
    SearchString,
    SearchToken,
    SearchUri,
)


@dataclass
class IndexValues:
    """Index values extracted from one resource, one tuple per future row."""

    strings: list[tuple[str, str, str]] = field(default_factory=list)  # param, normalised, exact
    tokens: list[tuple[str, str | None, str | None, str | None]] = field(
        default_factory=list
    )  # param, system, code, text
    dates: list[tuple[str, int, int]] = field(default_factory=list)  # param, low, high
    references: list[tuple[str, str | None, str | None, str | None]] = field(
        default_factory=list
    )  # param, target_type, target_id, url
    quantities: list[tuple[str, float, str | None, str | None, str | None]] = field(
        default_factory=list
    )  # param, value, system, code, unit
    uris: list[tuple[str, str]] = field(default_factory=list)  # param, uri

    def deduplicated(self) -> IndexValues:
        return IndexValues(*(list(dict.fromkeys(getattr(self, n))) for n in _FIELDS))


_FIELDS = ("strings", "tokens", "dates", "references", "quantities", "uris")
_COLUMNS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "strings": (SearchString.__table__, ("param", "value", "exact")),  # type: ignore[attr-defined]
    "tokens": (SearchToken.__table__, ("param", "system", "code", "text")),  # type: ignore[attr-defined]
    "dates": (SearchDate.__table__, ("param", "low", "high")),  # type: ignore[attr-defined]
    "references": (
        SearchReference.__table__,  # type: ignore[attr-defined]
        ("param", "target_type", "target_id", "url"),
    ),
    "quantities": (
        SearchQuantity.__table__,  # type: ignore[attr-defined]
        ("param", "value", "system", "code", "unit"),
    ),
    "uris": (SearchUri.__table__, ("param", "uri")),  # type: ignore[attr-defined]
}


def delete_index(session: Session, res_pk: int) -> None:
    for model in INDEX_TABLES:
        table: Any = model.__table__  # type: ignore[union-attr]
        session.execute(sa.delete(table).where(table.c.res_pk == res_pk))


def replace_index(
    session: Session, res_pk: int, rtype: str, values: IndexValues, *, fresh: bool = False
) -> None:
    """Swap the index rows of ``res_pk`` for ``values`` (duplicates are written once).

    ``fresh``: the resource was just inserted, so it has no rows to delete (saves six
    statements per create).
    """
    if not fresh:
        delete_index(session, res_pk)
    values = values.deduplicated()
    for name in _FIELDS:
        rows = getattr(values, name)
        if not rows:
            continue
        table, columns = _COLUMNS[name]
        session.execute(
            sa.insert(table),
            [{"res_pk": res_pk, "rtype": rtype, **dict(zip(columns, row, strict=True))}
             for row in rows],
        )
