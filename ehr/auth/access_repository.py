"""SQL behind access decisions: which patients a user may see, and the filter every query ANDs.

The filter is a SQL clause over a ``resource`` table alias, so searches, totals, includes,
chains, ``_has`` and history are filtered inside the database and reveal nothing about rows
the caller may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from ehr.auth.access_tables import AccessGrantRow, BreakGlassRow, CareTeamMemberRow
from ehr.store.tables import (
    CONSENT_PROVISION_TYPE,
    ResourceRow,
    ResourceVersionRow,
    SearchDate,
    SearchReference,
    SearchToken,
)

M = CareTeamMemberRow.__table__  # type: ignore[attr-defined]
B = BreakGlassRow.__table__  # type: ignore[attr-defined]
G = AccessGrantRow.__table__  # type: ignore[attr-defined]
R = ResourceRow.__table__  # type: ignore[attr-defined]
V = ResourceVersionRow.__table__  # type: ignore[attr-defined]
REF = SearchReference.__table__  # type: ignore[attr-defined]
TOK = SearchToken.__table__  # type: ignore[attr-defined]
DATE = SearchDate.__table__  # type: ignore[attr-defined]

# Reference parameters that place a resource in a patient's compartment.
PATIENT_PARAMS = ("patient", "subject")
PSYCHOTHERAPY = ("PSYTHPN",)
PART2 = ("SUD", "42CFRPart2")
# ``SELECT 1`` inside EXISTS as SQL text: a bound 1 would be one more parameter per probe to
# convert and send on every execution.
_ONE: ColumnElement[Any] = sa.literal_column("1")


def constants(values: Iterable[str]) -> list[Any]:
    """SQL string literals for fixed code lists (resource types, parameter names, labels).

    As literals they compile once into a cached statement; as bound lists every execution
    would re-render them (an IN list of 24 types cost more than the rest of a read)."""
    out: list[Any] = []
    for value in values:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"not a plain code: {value!r}")
        out.append(sa.literal_column(f"'{value}'"))
    return out


def _literal(value: str) -> Any:
    [column] = constants([value])
    return column


def _exists(query: sa.Select[Any], one_row: bool) -> ColumnElement[bool]:
    """EXISTS over ``query``. ``one_row``: the statement judges a single row (a read by id),
    so the subquery must stay an index probe for that row. Without the OFFSET 0 fence
    PostgreSQL may turn a correlated EXISTS into a hashed IN over the subquery's whole result
    (every patient on the user's care teams, every PSYTHPN token in the store) -- what it
    picks when statistics are missing or thin -- and a read then costs O(team or table size)
    instead of a few index lookups. Searches keep the planner's choice: over many rows the
    hash can be the better plan."""
    return sa.exists(query.offset(sa.literal_column("0")) if one_row else query)


def _current(member: Any, now: Any) -> ColumnElement[bool]:
    """A membership row in force at ``now`` (inside its participant's period, if any)."""
    return sa.and_(sa.or_(member.c.starts_at.is_(None), member.c.starts_at <= now),
                   sa.or_(member.c.ends_at.is_(None), member.c.ends_at > now))


def allowed_patients(member_keys: Any, username: Any, now: Any) -> sa.Select[Any]:
    """Patient ids on the user's care teams, plus those under an active break-the-glass grant.

    The arguments are values, or bind parameters of a statement that is cached and reused."""
    care = sa.select(M.c.patient_id).where(M.c.member.in_(list(member_keys)), _current(M, now))
    emergency = sa.select(B.c.patient_id).where(B.c.username == username, B.c.expires_at > now)
    return sa.union(care, emergency)  # type: ignore[return-value]


def patient_allowed(patient_id: Any, member_keys: Any, username: Any, now: Any, *,
                    one_row: bool = False) -> ColumnElement[bool]:
    """Whether the user may see ``patient_id`` (a column): a care-team row or a live grant.

    Correlated EXISTS probes of (member, patient_id) and (username, ...) indexes: the cost
    does not grow with the number of patients on the user's teams, unlike ``IN (union)``,
    which PostgreSQL materialises whole for every row it checks."""
    m, b = M.alias(), B.alias()
    care = _exists(sa.select(_ONE).select_from(m).where(
        m.c.member.in_(list(member_keys)), m.c.patient_id == patient_id, _current(m, now)),
        one_row)
    emergency = _exists(sa.select(_ONE).select_from(b).where(
        b.c.username == username, b.c.patient_id == patient_id, b.c.expires_at > now), one_row)
    return sa.or_(care, emergency)


def patient_clause(res: Any, allowed: Any, directory: Iterable[str], *, one_row: bool = False,
                   rtype: str | None = None) -> ColumnElement[bool]:
    """Directory types are open; Patients and compartment members only when ``allowed``
    (a function of a patient-id column) holds for their patient. ``rtype``: the rows are all
    of that type, so the type tests are settled here rather than in SQL."""
    ref = REF.alias()
    in_compartment = _exists(
        sa.select(_ONE).select_from(ref).where(
            ref.c.res_pk == res.c.pk,
            ref.c.param.in_(constants(PATIENT_PARAMS)),
            ref.c.target_type == _literal("Patient"),
            allowed(ref.c.target_id),
        ), one_row)
    if rtype is None:
        return sa.or_(
            res.c.rtype.in_(constants(directory)),
            sa.and_(res.c.rtype == _literal("Patient"), allowed(res.c.rid)),
            in_compartment,
        )
    if rtype in directory:
        return sa.true()
    if rtype == "Patient":
        # A Patient is in its own compartment only: it has no "patient" or "subject" reference
        # parameter (a test keeps that true), and every subquery left in the statement is set
        # up by PostgreSQL on each execution, taken or not.
        return allowed(res.c.rid)
    return in_compartment


def _labelled(res: Any, codes: tuple[str, ...], one_row: bool) -> ColumnElement[bool]:
    tok = TOK.alias()
    return _exists(
        sa.select(_ONE).select_from(tok).where(
            tok.c.res_pk == res.c.pk, tok.c.param == _literal("_security"),
            tok.c.code.in_(constants(codes))
        ), one_row)


def psychotherapy_clause(res: Any, username: Any, *, one_row: bool = False
                         ) -> ColumnElement[bool]:
    """PSYTHPN records: only their author (the user who created them) and named grantees."""
    if username is None:
        return sa.not_(_labelled(res, PSYCHOTHERAPY, one_row))
    ver = V.alias()
    # By (rtype, rid, version_id): the unique index of resource_version (res_pk has none).
    authored = _exists(sa.select(_ONE).select_from(ver).where(
        ver.c.rtype == res.c.rtype, ver.c.rid == res.c.rid,
        ver.c.version_id == sa.literal_column("1"), ver.c.actor_id == username), one_row)
    granted = _exists(sa.select(_ONE).select_from(G).where(
        G.c.rtype == res.c.rtype, G.c.rid == res.c.rid, G.c.grantee == username,
        G.c.revoked_at.is_(None)), one_row)
    return sa.or_(sa.not_(_labelled(res, PSYCHOTHERAPY, one_row)), authored, granted)


def part2_clause(res: Any, client_id: Any, now: Any, *, one_row: bool = False
                 ) -> ColumnElement[bool]:
    """42 CFR Part 2 records outside the treating team: only under an active Consent for the
    record's patient whose root provision permits (``type`` = permit) the system client
    (``Device/<client_id>`` in provision.actor), within its provision.period if it has one."""
    consent = R.alias()
    c_patient, c_actor, own = REF.alias(), REF.alias(), REF.alias()
    c_status, c_type, c_period = TOK.alias(), TOK.alias(), DATE.alias()
    outside_period = sa.exists(sa.select(_ONE).select_from(c_period).where(
        c_period.c.res_pk == consent.c.pk, c_period.c.param == _literal("period"),
        sa.or_(c_period.c.low > now, c_period.c.high <= now)))
    consented = _exists(
        sa.select(_ONE)
        .select_from(consent)
        .join(c_patient, c_patient.c.res_pk == consent.c.pk)
        .join(c_actor, c_actor.c.res_pk == consent.c.pk)
        .join(c_status, c_status.c.res_pk == consent.c.pk)
        .join(c_type, c_type.c.res_pk == consent.c.pk)
        .join(own, own.c.target_id == c_patient.c.target_id)
        .where(
            consent.c.rtype == _literal("Consent"), consent.c.deleted.is_(False),
            c_patient.c.param == _literal("patient"), c_actor.c.param == _literal("actor"),
            c_actor.c.target_type == _literal("Device"),
            c_actor.c.target_id == client_id,
            c_status.c.param == _literal("status"), c_status.c.code == _literal("active"),
            c_type.c.param == _literal(CONSENT_PROVISION_TYPE),
            c_type.c.code == _literal("permit"),
            sa.not_(outside_period),
            own.c.res_pk == res.c.pk, own.c.param.in_(constants(PATIENT_PARAMS)),
            own.c.target_type == _literal("Patient"),
        ), one_row)
    return sa.or_(sa.not_(_labelled(res, PART2, one_row)), consented)


def visibility_statement(clause: ColumnElement[bool]) -> sa.Select[Any]:
    """``SELECT 1`` for one resource (bind ``ehr_pk``) under a visibility clause over ``R``."""
    return sa.select(_ONE).select_from(R).where(R.c.pk == sa.bindparam("ehr_pk"),
                                                         clause)


def is_visible_by(session: Session, statement: sa.Select[Any], params: dict[str, Any]) -> bool:
    return session.execute(statement, params).first() is not None


def filter_patients(session: Session, patient_ids: Iterable[str], patients: Any) -> set[str]:
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return set()
    inner = patients.subquery()
    rows = session.execute(sa.select(inner.c.patient_id).where(inner.c.patient_id.in_(ids)))
    return {r[0] for r in rows}


# -- care-team membership -----------------------------------------------------------------


Membership = tuple[str, str, int | None, int | None]  # patient, member, starts_at, ends_at


def membership_rows(source: str, members: Iterable[Membership], now: int
                    ) -> list[dict[str, Any]]:
    """The ``care_team_member`` rows ``source`` grants: one per distinct member and period (a
    member named twice with two periods is a member within either, never in between)."""
    return [{"patient_id": p, "member": m, "source": source, "created_at": now,
             "starts_at": s, "ends_at": e} for p, m, s, e in dict.fromkeys(members)]


def replace_membership(
    session: Session, source: str, members: Iterable[Membership], now: int
) -> None:
    """Rebuild the rows a source resource (CareTeam/x, EpisodeOfCare/y) grants."""
    session.execute(sa.delete(M).where(M.c.source == source))
    rows = membership_rows(source, members, now)
    if rows:
        session.execute(sa.insert(M), rows)


# Built once: every patient a clinician registers runs it, and building a statement costs
# more than executing it. One round trip: the row is added unless it is there already.
_ADD_MEMBER = sa.insert(M).from_select(
    ["patient_id", "member", "source", "created_at"],
    sa.select(sa.bindparam("p", type_=M.c.patient_id.type),
              sa.bindparam("m", type_=M.c.member.type),
              sa.bindparam("s", type_=M.c.source.type),
              sa.bindparam("t", type_=M.c.created_at.type)).where(~sa.exists(
        sa.select(_ONE).select_from(M).where(
            M.c.patient_id == sa.bindparam("p"), M.c.member == sa.bindparam("m"),
            M.c.source == sa.bindparam("s")))))


def add_member(session: Session, patient_id: str, member: str, source: str, now: int) -> None:
    session.execute(_ADD_MEMBER, {"p": patient_id, "m": member, "s": source, "t": now})


def remove_members(session: Session, patient_id: str, members: Iterable[str], source: str
                   ) -> int:
    """Drop the rows ``source`` (e.g. ``registration``) gives these members; returns how many."""
    return len(session.execute(sa.delete(M).where(
        M.c.patient_id == patient_id, M.c.member.in_(list(members)), M.c.source == source)
        .returning(M.c.id)).all())


def members_of(session: Session, patient_id: str) -> list[tuple[str, str]]:
    rows = session.execute(sa.select(M.c.member, M.c.source).where(M.c.patient_id == patient_id)
                           .order_by(M.c.member))
    return [(r[0], r[1]) for r in rows]


# -- break-the-glass grants ---------------------------------------------------------------


def create_break_glass(
    session: Session, *, username: str, patient_id: str, reason: str, now: int, expires_at: int,
    request_id: str | None,
) -> int:
    result = session.execute(sa.insert(B).returning(B.c.id), {
        "username": username, "patient_id": patient_id, "reason": reason, "created_at": now,
        "expires_at": expires_at, "request_id": request_id})
    return int(result.scalar_one())


def has_grants(username: Any, now: Any) -> ColumnElement[bool]:
    """Whether ``username`` holds any live break-the-glass grant (a column expression)."""
    return sa.exists(sa.select(_ONE).select_from(B).where(
        B.c.username == username, B.c.expires_at > now))


# Built once: every write by a clinician runs it (the purpose of use of its audit record).
_EMERGENCY = sa.select(B.c.patient_id).where(B.c.username == sa.bindparam("u"),
                                             B.c.expires_at > sa.bindparam("now"))


def emergency_patients(session: Session, username: str, now: int) -> set[str]:
    return {r[0] for r in session.execute(_EMERGENCY, {"u": username, "now": now})}


def care_team_patients(session: Session, member_keys: Iterable[str],
                       patient_ids: Iterable[str], now: int) -> set[str]:
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return set()
    rows = session.execute(sa.select(M.c.patient_id).where(
        M.c.member.in_(list(member_keys)), M.c.patient_id.in_(ids), _current(M, now)))
    return {r[0] for r in rows}


def list_break_glass(session: Session, *, open_only: bool, limit: int = 200) -> list[BreakGlassRow]:
    stmt = sa.select(B).order_by(B.c.created_at.desc()).limit(limit)
    if open_only:
        stmt = stmt.where(B.c.reviewed_at.is_(None))
    return [BreakGlassRow(**dict(r._mapping)) for r in session.execute(stmt)]


def review_break_glass(session: Session, grant_id: int, *, reviewer: str, note: str,
                       now: int) -> bool:
    result = session.execute(
        sa.update(B).where(B.c.id == grant_id, B.c.reviewed_at.is_(None))
        .values(reviewed_by=reviewer, reviewed_at=now, review_note=note))
    return result.rowcount == 1  # type: ignore[attr-defined]
