"""Queries over the audit trail: filtered, sorted, keyset-paged and streamed.

A filter is a conjunction of clauses, each a disjunction of terms, which is how FHIR search
combines repeated parameters (AND) and comma-separated values (OR); the compliance report uses
the same form. Terms name audit concepts (actor, patient, resource, interaction...), never
SQL, so the layers above never write queries.

Sorting accepts every field of a record. Fields that exist only inside the canonical body
(source IP, user agent, actor display) are read with the database's JSON functions, so the
database sorts and the application streams in constant memory. A leading "is null" key puts
empty values last in both directions on both databases (they disagree by default), and
``seq`` ends every order so it is total.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from ehr.audit.tables import AuditPatientRow, AuditRecordRow
from ehr.errors import BadRequest

R = AuditRecordRow.__table__  # type: ignore[attr-defined]
P = AuditPatientRow.__table__  # type: ignore[attr-defined]

TERM_KINDS = frozenset({
    "seq", "time", "time_not", "actor", "actor_kind", "practitioner", "resource", "patient",
    "interaction", "interaction_prefix", "interaction_not", "status", "outcome", "category",
    "all",
})


@dataclass(frozen=True)
class Term:
    """One condition. ``value`` by kind:

    seq int; time / time_not (low | None, high | None), a half-open µs range; actor, actor_kind,
    practitioner ("Practitioner/x"), patient, interaction, interaction_prefix, outcome,
    category: str; interaction_not tuple[str, ...]; resource (type, id | None, version | None);
    status (low, high) half-open; all: tuple[Term, ...] that must all hold.
    """

    kind: str
    value: Any

    def __post_init__(self) -> None:
        if self.kind not in TERM_KINDS:
            raise ValueError(f"unknown audit filter term {self.kind!r}")


@dataclass(frozen=True)
class AuditFilter:
    clauses: tuple[tuple[Term, ...], ...] = ()

    def where(self, *terms: Term) -> AuditFilter:
        """This filter AND (any of ``terms``)."""
        return AuditFilter((*self.clauses, tuple(terms)))


@dataclass(frozen=True)
class AuditRow:
    seq: int
    time: int
    category: str
    interaction: str
    outcome: str
    status: int
    actor_id: str | None
    actor_kind: str | None
    rtype: str | None
    rid: str | None
    version_id: int | None
    request_id: str | None
    purpose: str | None
    protected: bool
    body: str
    prev_hash: str
    hash: str


COLUMNS = tuple(f.name for f in AuditRow.__dataclass_fields__.values())


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False


# Sort field -> (column name | body JSON path). Aliases let a report say "actor" or "user".
SORT_FIELDS: dict[str, str | tuple[str, ...]] = {
    "seq": "seq", "time": "time", "category": "category", "interaction": "interaction",
    "outcome": "outcome", "status": "status", "actor": "actor_id", "actor_kind": "actor_kind",
    "resource_type": "rtype", "resource_id": "rid", "resource_version": "version_id",
    "request_id": "request_id", "purpose": "purpose", "protected": "protected",
    "hash": "hash", "patients": "patients",
    "actor_display": ("actor", "display"), "source_ip": ("source", "ip"),
    "user_agent": ("source", "user_agent"),
}
SORT_ALIASES = {"date": "time", "user": "actor", "actor_id": "actor", "type": "category",
                "rtype": "resource_type", "rid": "resource_id", "version": "resource_version",
                "version_id": "resource_version", "ip": "source_ip", "patient": "patients",
                "action": "interaction", "purpose_of_use": "purpose"}


def sort_field(name: str) -> str:
    """The canonical name of a sort field; BadRequest naming the valid ones otherwise."""
    canonical = SORT_ALIASES.get(name, name)
    if canonical not in SORT_FIELDS:
        raise BadRequest(f"Cannot sort by {name!r}; sortable fields: "
                         f"{', '.join(sorted(SORT_FIELDS))}", expression=("sort",))
    return canonical


def _json_text(session: Session, path: tuple[str, ...]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(R.c.body, postgresql.JSONB)[path].astext
    return sa.func.json_extract(R.c.body, "$." + ".".join(path))


def _sort_expr(session: Session, name: str) -> Any:
    target = SORT_FIELDS[name]
    if isinstance(target, tuple):
        return _json_text(session, target)
    if target == "patients":
        return (sa.select(sa.func.min(P.c.patient_id)).where(P.c.seq == R.c.seq)
                .scalar_subquery())
    return R.c[target]


def _range(col: Any, low: int | None, high: int | None) -> Any:
    parts = []
    if low is not None:
        parts.append(col >= low)
    if high is not None:
        parts.append(col < high)
    return sa.and_(sa.true(), *parts)


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _term_sql(term: Term) -> Any:
    kind, value = term.kind, term.value
    if kind == "seq":
        return R.c.seq == int(value)
    if kind == "time":
        return _range(R.c.time, *value)
    if kind == "time_not":
        return sa.not_(_range(R.c.time, *value))
    if kind in ("actor", "actor_kind", "interaction", "outcome", "category"):
        return R.c[{"actor": "actor_id"}.get(kind, kind)] == value
    if kind == "practitioner":
        # The canonical body is compact JSON, so the actor's practitioner appears verbatim.
        marker = '%"practitioner":"' + _like_literal(str(value)) + '"%'
        return R.c.body.like(marker, escape="\\")
    if kind == "resource":
        rtype, rid, version = value
        parts = [R.c.rtype == rtype]
        if rid is not None:
            parts.append(R.c.rid == rid)
        if version is not None:
            parts.append(R.c.version_id == int(version))
        return sa.and_(*parts)
    if kind == "patient":
        return sa.exists().where(P.c.seq == R.c.seq, P.c.patient_id == value)
    if kind == "interaction_prefix":
        return R.c.interaction.like(_like_literal(value) + "%", escape="\\")
    if kind == "interaction_not":
        return R.c.interaction.not_in(list(value)) if value else sa.true()
    if kind == "status":
        return _range(R.c.status, *value)
    return sa.and_(sa.true(), *(_term_sql(t) for t in value))  # "all"


def conditions(flt: AuditFilter) -> list[Any]:
    return [sa.or_(*(_term_sql(t) for t in clause)) if clause else sa.false()
            for clause in flt.clauses]


def _row(values: Sequence[Any]) -> AuditRow:
    data = dict(zip(COLUMNS, values, strict=True))
    data["protected"] = bool(data["protected"])
    return AuditRow(**data)


def get_record(session: Session, seq: int, flt: AuditFilter = AuditFilter()) -> AuditRow | None:
    stmt = sa.select(*(R.c[c] for c in COLUMNS)).where(R.c.seq == seq, *conditions(flt))
    found = session.execute(stmt).first()
    return None if found is None else _row(found)


def count(session: Session, flt: AuditFilter) -> int:
    stmt = sa.select(sa.func.count()).select_from(R).where(*conditions(flt))
    return int(session.execute(stmt).scalar_one())


# -- keyset paging on (time, seq) ---------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A page edge: the (time, seq) of a row and the direction to go from it."""

    forward: bool
    time: int
    seq: int
    inclusive: bool = False

    def encode(self) -> str:
        flags = ("n" if self.forward else "p") + ("i" if self.inclusive else "")
        return f"{flags}{self.time}.{self.seq}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            direction, rest = text[0], text[1:]
            inclusive = rest.startswith("i")
            time, seq = rest.removeprefix("i").split(".")
            if direction not in "np":
                raise ValueError(direction)
            return cls(direction == "n", int(time), int(seq), inclusive)
        except (ValueError, IndexError) as exc:
            raise BadRequest(f"Invalid _cursor {text!r}", expression=("_cursor",)) from exc


@dataclass
class AuditPage:
    rows: list[AuditRow]
    total: int
    next: Cursor | None
    previous: Cursor | None


def _after(time: int, seq: int, later: bool, inclusive: bool) -> Any:
    """Rows after (``later``) or before the edge in (time, seq) order."""
    cmp_time = R.c.time > time if later else R.c.time < time
    if inclusive:
        cmp_seq = R.c.seq >= seq if later else R.c.seq <= seq
    else:
        cmp_seq = R.c.seq > seq if later else R.c.seq < seq
    return sa.or_(cmp_time, sa.and_(R.c.time == time, cmp_seq))


def search_page(session: Session, flt: AuditFilter, *, descending: bool, count_: int,
                cursor: Cursor | None) -> AuditPage:
    """One page in date order (``descending`` newest first), with edges to the next/previous."""
    conds = conditions(flt)
    total = int(session.execute(sa.select(sa.func.count()).select_from(R).where(*conds))
                .scalar_one())
    forward = cursor is None or cursor.forward
    # Going forward in a descending listing means going to earlier rows.
    later = forward != descending
    stmt = sa.select(*(R.c[c] for c in COLUMNS)).where(*conds)
    if cursor is not None:
        stmt = stmt.where(_after(cursor.time, cursor.seq, later, cursor.inclusive))
    order = [R.c.time.asc(), R.c.seq.asc()] if later else [R.c.time.desc(), R.c.seq.desc()]
    found = [_row(r) for r in session.execute(stmt.order_by(*order).limit(count_ + 1))]
    more = len(found) > count_
    rows = found[:count_]
    if not forward:
        rows.reverse()
    nxt = prev = None
    if rows:
        first, last = rows[0], rows[-1]
        if (forward and more) or not forward:
            nxt = Cursor(True, last.time, last.seq)
        if (not forward and more) or (forward and cursor is not None):
            prev = Cursor(False, first.time, first.seq)
    elif cursor is not None:
        # Walked off an end: offer the way back, including the edge row itself.
        back = Cursor(not cursor.forward, cursor.time, cursor.seq, inclusive=not cursor.inclusive)
        nxt, prev = (back, None) if back.forward else (None, back)
    return AuditPage(rows, total, nxt, prev)


# -- streaming in any order --------------------------------------------------------------


def stream(session: Session, flt: AuditFilter, sort: Sequence[SortKey],
           batch: int = 500) -> Iterator[AuditRow]:
    """Every matching record in ``sort`` order, fetched ``batch`` rows at a time."""
    order: list[Any] = []
    for key in sort:
        expr = _sort_expr(session, key.field)
        order.append(sa.case((expr.is_(None), 1), else_=0))
        order.append(expr.desc() if key.descending else expr.asc())
    order.append(R.c.seq.asc())
    stmt = (sa.select(*(R.c[c] for c in COLUMNS)).where(*conditions(flt)).order_by(*order)
            .execution_options(yield_per=batch))
    for values in session.execute(stmt):
        yield _row(values)
