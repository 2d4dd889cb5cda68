"""SQL for the eligibility gate: the latest checklist, active flags and the latest decision.

Everything is found through the search index of the current versions (``search_*`` tables),
so these queries see exactly what a FHIR search would, without access control: the callers
have already decided the caller may see the patient.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ehr.store.repository import StoredResource
from ehr.store.tables import ResourceRow, SearchDate, SearchReference, SearchToken

R = ResourceRow.__table__  # type: ignore[attr-defined]
REF = SearchReference.__table__  # type: ignore[attr-defined]
TOK = SearchToken.__table__  # type: ignore[attr-defined]
DATE = SearchDate.__table__  # type: ignore[attr-defined]
_COLS = (R.c.pk, R.c.rtype, R.c.rid, R.c.version_id, R.c.last_updated, R.c.deleted,
         R.c.content)


def _of_patient(rtype: str, patient_id: str) -> sa.Select[Any]:
    """Live current rows of ``rtype`` whose ``patient`` search parameter is the patient."""
    patient = REF.alias("patient_ref")
    return (sa.select(*_COLS)
            .join(patient, sa.and_(patient.c.res_pk == R.c.pk, patient.c.rtype == rtype,
                                   patient.c.param == "patient",
                                   patient.c.target_type == "Patient",
                                   patient.c.target_id == patient_id))
            .where(R.c.rtype == rtype, R.c.deleted.is_(False)))


def _with_token(stmt: sa.Select[Any], rtype: str, param: str, codes: tuple[str, ...],
                system: str | None = None) -> sa.Select[Any]:
    token = TOK.alias(f"{param}_token")
    clause = sa.and_(token.c.res_pk == R.c.pk, token.c.rtype == rtype, token.c.param == param,
                     token.c.code.in_(codes))
    if system is not None:
        clause = sa.and_(clause, token.c.system == system)
    return stmt.join(token, clause)


def _newest_by_date(stmt: sa.Select[Any], rtype: str, param: str) -> sa.Select[Any]:
    # The clinical date when the resource has one, else when it was stored.
    moment = DATE.alias(f"{param}_date")
    stmt = stmt.outerjoin(moment, sa.and_(moment.c.res_pk == R.c.pk, moment.c.rtype == rtype,
                                          moment.c.param == param))
    return stmt.order_by(sa.func.coalesce(moment.c.low, R.c.last_updated).desc(),
                         R.c.last_updated.desc(), R.c.pk.desc()).limit(1)


def latest_checklist(session: Session, patient_id: str, url: str) -> StoredResource | None:
    """The newest completed (or amended) response to the checklist ``url`` for the patient."""
    questionnaire = REF.alias("questionnaire_ref")
    stmt = _of_patient("QuestionnaireResponse", patient_id).join(
        questionnaire, sa.and_(questionnaire.c.res_pk == R.c.pk,
                               questionnaire.c.rtype == "QuestionnaireResponse",
                               questionnaire.c.param == "questionnaire",
                               questionnaire.c.url == url))
    stmt = _with_token(stmt, "QuestionnaireResponse", "status", ("completed", "amended"))
    row = session.execute(_newest_by_date(stmt, "QuestionnaireResponse", "authored")).first()
    return StoredResource(*row) if row else None


def active_flags(session: Session, patient_id: str) -> list[StoredResource]:
    stmt = _with_token(_of_patient("Flag", patient_id), "Flag", "status", ("active",))
    rows = session.execute(stmt.order_by(R.c.pk)).all()
    return [StoredResource(*r) for r in rows]


def latest_decision(session: Session, patient_id: str, system: str,
                    code: str) -> StoredResource | None:
    """The eligibility decision Observation with the newest decision time for the patient."""
    stmt = _with_token(_of_patient("Observation", patient_id), "Observation", "code", (code,),
                       system)
    row = session.execute(_newest_by_date(stmt, "Observation", "date")).first()
    return StoredResource(*row) if row else None
