"""Patient compartments and whole-type streams, read in keyset batches.

``$everything`` pages through one patient's compartment; bulk ``$export`` streams every
resource of a type (optionally only those of some patients) in constant memory: each batch is
one indexed range query on ``resource.pk``, never an OFFSET, never the whole result at once.
Access control arrives as a ``Restriction`` over the ``resource`` table, as for searches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.criteria import Restriction
from ehr.store.tables import ResourceRow, SearchReference

R = ResourceRow.__table__  # type: ignore[attr-defined]
REF = SearchReference.__table__  # type: ignore[attr-defined]

# Reference search parameters that place a resource in a patient's compartment.
COMPARTMENT_PARAMS = ("patient", "subject")


@dataclass(frozen=True, slots=True)
class Row:
    pk: int
    rtype: str
    rid: str
    last_updated: int
    content: str
    patient: str | None = None  # the patient whose compartment holds it (streams only)


def _in_compartment(patients: Sequence[str]) -> sa.ColumnElement[bool]:
    ref = REF.alias()
    return sa.or_(
        sa.and_(R.c.rtype == "Patient", R.c.rid.in_(list(patients))),
        sa.exists(sa.select(sa.literal_column("1")).select_from(ref).where(
            ref.c.res_pk == R.c.pk, ref.c.param.in_(COMPARTMENT_PARAMS),
            ref.c.target_type == "Patient", ref.c.target_id.in_(list(patients)))),
    )


def _filters(rtypes: Sequence[str] | None, patients: Sequence[str] | None, since: int | None,
             restriction: Restriction | None) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [R.c.deleted.is_(False)]
    if rtypes is not None:
        clauses.append(R.c.rtype.in_(list(rtypes)))
    if patients is not None:
        clauses.append(_in_compartment(patients))
    if since is not None:
        clauses.append(R.c.last_updated > since)
    if restriction is not None:
        clauses.append(restriction(R))
    return clauses


def page(session: Session, *, rtypes: Sequence[str] | None, patients: Sequence[str] | None,
         since: int | None, restriction: Restriction | None, after_pk: int, limit: int
         ) -> list[Row]:
    """Up to ``limit`` live resources after ``after_pk``, in storage order."""
    stmt = (sa.select(R.c.pk, R.c.rtype, R.c.rid, R.c.last_updated, R.c.content)
            .where(R.c.pk > after_pk, *_filters(rtypes, patients, since, restriction))
            .order_by(R.c.pk).limit(limit))
    return [Row(*r) for r in session.execute(stmt)]


def _patient_column(rtype: str) -> sa.ColumnElement[str | None]:
    if rtype == "Patient":
        return R.c.rid
    ref = REF.alias()
    # One index probe per row: cheaper than reading the patient out of the JSON afterwards.
    return (sa.select(sa.func.min(ref.c.target_id)).where(
        ref.c.res_pk == R.c.pk, ref.c.param.in_(COMPARTMENT_PARAMS),
        ref.c.target_type == "Patient").scalar_subquery())


def stream(session: Session, *, rtype: str, patients: Sequence[str] | None, since: int | None,
           restriction: Restriction | None, batch: int = 5000) -> Iterator[Row]:
    """Every live resource of ``rtype`` (in the compartments of ``patients`` when given), each
    with the patient whose compartment holds it (for the audit record of a disclosure)."""
    after = 0
    columns = (R.c.pk, R.c.rtype, R.c.rid, R.c.last_updated, R.c.content,
               _patient_column(rtype))
    while True:
        stmt = (sa.select(*columns)
                .where(R.c.pk > after, *_filters((rtype,), patients, since, restriction))
                .order_by(R.c.pk).limit(batch))
        rows = [Row(*r) for r in session.execute(stmt)]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].pk
