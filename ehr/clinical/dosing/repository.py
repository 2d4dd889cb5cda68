"""SQL the dosing gate needs: a patient's recent vitals, weights and earlier doses.

Reads go through the search index tables (one row per indexed value of the current version),
so they see exactly what a FHIR search would, including resources written earlier in the same
transaction (a transaction Bundle may carry the vitals and the dose together).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.repository import get_current, lock_key
from ehr.store.tables import ResourceRow, SearchDate, SearchReference, SearchToken

_R: Any = ResourceRow.__table__  # type: ignore[attr-defined]
_REF: Any = SearchReference.__table__  # type: ignore[attr-defined]
_TOK: Any = SearchToken.__table__  # type: ignore[attr-defined]
_DATE: Any = SearchDate.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Row:
    rid: str
    content: str
    at_us: int  # low end of the indexed effective time


def _of_patient(rtype: str, patient_id: str, date_param: str, since_us: int,
                until_us: int) -> sa.Select[Any]:
    """Current ``rtype`` rows of the patient whose effective time starts in the window."""
    return (
        sa.select(_R.c.rid, _R.c.content, _DATE.c.low)
        .select_from(_R)
        .join(_REF, sa.and_(_REF.c.res_pk == _R.c.pk, _REF.c.param == "patient",
                            _REF.c.target_type == "Patient", _REF.c.target_id == patient_id))
        .join(_DATE, sa.and_(_DATE.c.res_pk == _R.c.pk, _DATE.c.param == date_param))
        .where(_R.c.rtype == rtype, _R.c.deleted.is_(False), _REF.c.rtype == rtype,
               _DATE.c.low >= since_us, _DATE.c.low <= until_us)
    )


def observations(session: Session, patient_id: str, system: str, codes: Iterable[str],
                 since_us: int, until_us: int) -> list[Row]:
    """The patient's Observations coded with one of ``codes``, newest first."""
    wanted = sorted(set(codes))
    stmt = (_of_patient("Observation", patient_id, "date", since_us, until_us)
            .where(sa.exists().where(_TOK.c.res_pk == _R.c.pk, _TOK.c.param == "code",
                                     _TOK.c.system == system, _TOK.c.code.in_(wanted)))
            .order_by(_DATE.c.low.desc(), _R.c.pk.desc()))
    return [Row(r[0], r[1], r[2]) for r in session.execute(stmt) if r[1]]


def administrations(session: Session, patient_id: str, since_us: int, until_us: int,
                    *, excluding: str) -> list[Row]:
    """The patient's MedicationAdministrations starting in the window (any drug)."""
    stmt = (_of_patient("MedicationAdministration", patient_id, "effective-time", since_us,
                        until_us)
            .where(_R.c.rid != excluding)
            .order_by(_DATE.c.low, _R.c.pk))
    return [Row(r[0], r[1], r[2]) for r in session.execute(stmt) if r[1]]


def current_content(session: Session, rtype: str, rid: str) -> str | None:
    stored = get_current(session, rtype, rid)
    return None if stored is None or stored.deleted else stored.content


def lock_patient_dosing(session: Session, patient_id: str) -> None:
    """Serialise dose checks per patient: two chairs cannot both pass the interval rule."""
    lock_key(session, f"dosing:Patient/{patient_id}")
