"""The access policy applied on every read and write path (the pipeline's ``Guard``).

A decision has three parts, all required: the role table (``policy_table``), the token's
scopes, and the records themselves (care team, sensitivity labels, break-the-glass). The last
part is a SQL clause, so searches, totals, includes, chains, ``_has`` and history are filtered
inside the query; single reads use the same clause, so both paths answer alike. A record the
caller may not see reads as 404, exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import simplejson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from ehr.audit.events import patients_referenced
from ehr.auth import access_repository as repo
from ehr.auth.policy_table import (
    DIRECTORY_TYPES,
    INTERACTION_PERMISSION,
    METADATA_ONLY,
    ORGANIZATION_WIDE,
    role_permissions,
)
from ehr.auth.redaction import keep_elements
from ehr.auth.roles import ROLES, Role
from ehr.auth.scopes import ScopeSet
from ehr.context import Actor, RequestContext
from ehr.errors import Forbidden, NotFound
from ehr.store.criteria import Restriction
from ehr.store.repository import StoredResource, current_where, get_current, get_version

_SESSION_KEY = "ehr_access"
_GRANTS_KEY = "ehr_has_break_glass"
CLINICAL_ROLES = frozenset({Role.PHYSICIAN, Role.NURSE, Role.THERAPIST})


def member_keys(actor: Actor) -> tuple[str, ...]:
    """How care-team rows name this user: its Practitioner and its user name."""
    keys = [f"User/{actor.id}"]
    if actor.practitioner:
        keys.append(actor.practitioner)
    return tuple(keys)


@dataclass(frozen=True)
class Access:
    """What one request's actor holds, computed once per transaction."""

    actor: Actor
    roles: frozenset[Role]
    scopes: ScopeSet
    now: int

    @property
    def internal(self) -> bool:
        return self.actor.kind == "system"

    @property
    def is_client(self) -> bool:
        return self.actor.kind == "client"

    @property
    def care_team_limited(self) -> bool:
        return self.actor.kind == "user" and not (self.roles & ORGANIZATION_WIDE)

    def permits(self, rtype: str, letter: str) -> bool:
        if self.internal:
            return True
        context = "system" if self.is_client else "user"
        if not self.scopes.allows(context, rtype, letter):
            return False
        if self.is_client:
            return True  # system clients get exactly their scopes
        return any(letter in role_permissions(role, rtype) for role in self.roles)

    def metadata_only(self, rtype: str) -> tuple[str, ...] | None:
        """The elements to keep when every role that may read ``rtype`` sees metadata only."""
        if self.internal or self.is_client:
            return None
        return _metadata_only(self.roles, rtype)


# Both below are pure functions of the policy table and of what a token carries: worked out
# once per distinct input instead of on every request. Nothing that depends on records (care
# teams, labels, grants) is cached here; that is decided in SQL on every request.
@lru_cache(maxsize=4096)
def _metadata_only(roles: frozenset[Role], rtype: str) -> tuple[str, ...] | None:
    readers = [r for r in roles if "r" in role_permissions(r, rtype)]
    kept = [METADATA_ONLY.get((r, rtype)) for r in readers]
    if readers and all(k is not None for k in kept):
        return kept[0]
    return None


@lru_cache(maxsize=1024)
def _holdings(roles: frozenset[str], scopes: frozenset[str]) -> tuple[frozenset[Role], ScopeSet]:
    """A token's known roles and its parsed scopes."""
    return frozenset(Role(r) for r in roles if r in ROLES), ScopeSet.parse(scopes)


class PolicyGuard:
    """Implements the pipeline's Guard protocol."""

    def __init__(self, clock: Callable[[], int], resource_types: Iterable[str]) -> None:
        self.clock = clock
        self.resource_types = tuple(sorted(resource_types))

    # -- per-request state ----------------------------------------------------------------

    def access(self, session: Session, ctx: RequestContext) -> Access:
        cached = session.info.get(_SESSION_KEY)
        if isinstance(cached, Access) and cached.actor is ctx.actor:
            return cached
        actor = ctx.actor
        roles, scopes = _holdings(actor.roles, actor.scopes)
        access = Access(actor, roles, scopes, self.clock())
        session.info[_SESSION_KEY] = access
        return access

    def _patients(self, access: Access) -> Any:
        return repo.allowed_patients(member_keys(access.actor), access.actor.id, access.now)

    @lru_cache(maxsize=256)  # noqa: B019  (one guard per process; keys are small)
    def _unreadable(self, roles: frozenset[Role], scopes: ScopeSet, kind: str, letter: str
                    ) -> tuple[str, ...]:
        probe = Access(Actor(id="", kind=kind, roles=frozenset(roles)), roles, scopes, 0)
        return tuple(t for t in self.resource_types if not probe.permits(t, letter))

    def _build(self, res: Any, access: Access, letter: str, *, one_row: bool,
               rtype: str | None = None) -> ColumnElement[bool]:
        """The visibility clause over ``res``. ``one_row``: for the cached statements that
        judge a single row (reads by id): the caller's identity stays bind parameters, so one
        statement serves every request, and subqueries stay per-row index probes. ``rtype``:
        the row's type when the statement is for one type only, which leaves out the branches
        that cannot apply to it (PostgreSQL would otherwise set up every one on each read)."""
        unreadable = self._unreadable(access.roles, access.scopes, access.actor.kind, letter)
        if len(unreadable) == len(self.resource_types) or rtype in unreadable:
            return sa.false()
        parts: list[ColumnElement[bool]] = []
        if rtype is None:
            parts.append(res.c.rtype.not_in(repo.constants(unreadable)) if unreadable
                         else res.c.rtype.is_not(None))
        user: Any = sa.bindparam("ehr_user") if one_row else access.actor.id
        if access.care_team_limited:
            # Two scalar parameters, not an expanding list: an expanding parameter makes
            # SQLAlchemy re-render the whole statement's SQL on every execution.
            members: Any = ([sa.bindparam("ehr_member"), sa.bindparam("ehr_practitioner")]
                            if one_row else member_keys(access.actor))
            now: Any = sa.bindparam("ehr_now") if one_row else access.now
            parts.append(repo.patient_clause(
                res, lambda col: repo.patient_allowed(col, members, user, now, one_row=one_row),
                DIRECTORY_TYPES, one_row=one_row, rtype=rtype))
        parts.append(repo.psychotherapy_clause(res, None if access.is_client else user,
                                               one_row=one_row))
        if access.is_client:
            client: Any = sa.bindparam("ehr_client") if one_row else access.actor.id
            at: Any = sa.bindparam("ehr_now") if one_row else access.now
            parts.append(repo.part2_clause(res, client, at, one_row=one_row))
        return sa.and_(*parts)

    @lru_cache(maxsize=1024)  # noqa: B019
    def _read_statement(self, roles: frozenset[Role], scopes: ScopeSet, kind: str, rtype: str
                        ) -> sa.Select[Any]:
        """The read of one ``rtype`` row (binds ``ehr_t``, which must be ``rtype``)."""
        probe = Access(Actor(id="", kind=kind, roles=frozenset(roles)), roles, scopes, 0)
        statement = current_where(self._build(repo.R, probe, "r", one_row=True, rtype=rtype))
        if probe.care_team_limited:
            # Whether the user holds any live break-the-glass grant, so marking the purpose of
            # use costs no further query in the usual case (none).
            statement = statement.add_columns(repo.has_grants(
                sa.bindparam("ehr_user"), sa.bindparam("ehr_now")))
        return statement

    def _params(self, access: Access) -> dict[str, Any]:
        params: dict[str, Any] = {"ehr_user": access.actor.id}
        if access.care_team_limited:
            keys = member_keys(access.actor)
            # The user key twice when no Practitioner is linked: IN (a, a) is IN (a).
            params.update(ehr_member=keys[0], ehr_practitioner=keys[-1], ehr_now=access.now)
        if access.is_client:
            params.update(ehr_client=access.actor.id, ehr_now=access.now)
        return params

    def fetch_visible(self, session: Session, ctx: RequestContext, rtype: str, rid: str
                      ) -> StoredResource | None:
        access = self.access(session, ctx)
        if access.internal:
            stored = get_current(session, rtype, rid)
            return stored if stored is not None and not stored.deleted else None
        statement = self._read_statement(access.roles, access.scopes, access.actor.kind,
                                         rtype)
        row = session.execute(statement, {**self._params(access), "ehr_t": rtype,
                                          "ehr_i": rid}).first()
        if row is None:
            return None
        if access.care_team_limited:
            session.info[_GRANTS_KEY] = bool(row[7])
        return StoredResource(*row[:7])

    @lru_cache(maxsize=1024)  # noqa: B019
    def _visibility_statement(self, roles: frozenset[Role], scopes: ScopeSet, kind: str,
                              care_team_limited: bool, rtype: str) -> sa.Select[Any]:
        probe = Access(Actor(id="", kind=kind, roles=frozenset(roles)), roles, scopes, 0)
        assert probe.care_team_limited == care_team_limited
        return repo.visibility_statement(self._build(repo.R, probe, "r", one_row=True,
                                                     rtype=rtype))

    # -- Guard protocol -------------------------------------------------------------------

    def authorize(
        self,
        session: Session,
        ctx: RequestContext,
        interaction: str,
        rtype: str | None,
        *,
        resource: dict[str, Any] | None = None,
        stored: StoredResource | None = None,
    ) -> None:
        access = self.access(session, ctx)
        if access.internal:
            return
        letter = INTERACTION_PERMISSION.get(interaction)
        if letter is None:
            return  # bundle envelopes: every entry is authorized on its own
        if rtype is None:
            if not any(access.permits(t, letter) for t in self.resource_types):
                raise Forbidden("You are not permitted to do this")
            return
        if not access.permits(rtype, letter):
            raise Forbidden("You are not permitted to do this")
        if stored is not None and not self.visible(session, ctx, stored):
            raise NotFound(f"{rtype}/{stored.rid} is not known")
        if resource is not None and letter in ("c", "u"):
            self._check_new_content(session, access, rtype, resource)

    def restriction(
        self, session: Session, ctx: RequestContext, rtype: str | None
    ) -> Restriction | None:
        return self._restriction(session, ctx, "s")

    def _restriction(self, session: Session, ctx: RequestContext, letter: str
                     ) -> Restriction | None:
        # ``letter`` is the permission that makes a type readable: "s" for searches, "r" for
        # single reads, so a ``system/Patient.r`` client can read a Patient it cannot search.
        access = self.access(session, ctx)
        if access.internal:
            return None

        def clause(res: Any) -> ColumnElement[bool]:
            return self._build(res, access, letter, one_row=False)

        return clause

    def visible(self, session: Session, ctx: RequestContext, stored: StoredResource) -> bool:
        access = self.access(session, ctx)
        if access.internal:
            return True
        if stored.deleted:
            return self._visible_deleted(session, access, stored)
        statement = self._visibility_statement(access.roles, access.scopes, access.actor.kind,
                                               access.care_team_limited, stored.rtype)
        return repo.is_visible_by(session, statement, {**self._params(access),
                                                       "ehr_pk": stored.pk})

    def _visible_deleted(self, session: Session, access: Access, stored: StoredResource) -> bool:
        # A tombstone has no index rows to filter on: judge it by its last live version, so a
        # 410 never tells an outsider that a record existed.
        if not access.permits(stored.rtype, "r"):
            return False
        last = get_version(session, stored.rtype, stored.rid, stored.version_id - 1)
        if last is None or last.content is None:
            return False
        resource = simplejson.loads(last.content)
        labels = {s.get("code") for s in (resource.get("meta") or {}).get("security", [])}
        if labels & set(repo.PSYCHOTHERAPY) and not access.internal:
            return False
        if labels & set(repo.PART2) and access.is_client:
            # Consent is judged on index rows a tombstone no longer has: stay silent.
            return False
        if not access.care_team_limited or stored.rtype in DIRECTORY_TYPES:
            return True
        patients = {stored.rid} if stored.rtype == "Patient" else set(
            patients_referenced(resource))
        return patients <= repo.filter_patients(session, patients, self._patients(access))

    def view(self, session: Session, ctx: RequestContext, stored: StoredResource) -> StoredResource:
        """The form of a record this caller receives (metadata only for some roles)."""
        keep = self.access(session, ctx).metadata_only(stored.rtype)
        if keep is None or stored.content is None:
            return stored
        return keep_elements(stored, keep)

    def purpose_of_use(self, session: Session, ctx: RequestContext,
                       patients: Iterable[str]) -> str:
        """``ETREAT`` when a patient is reached only through break-the-glass."""
        access = self.access(session, ctx)
        ids = set(patients)
        if not ids or not access.care_team_limited or session.info.get(_GRANTS_KEY) is False:
            return ctx.purpose_of_use
        emergency = repo.emergency_patients(session, access.actor.id, access.now) & ids
        if not emergency:
            return ctx.purpose_of_use
        own = repo.care_team_patients(session, member_keys(access.actor), emergency, access.now)
        return "ETREAT" if emergency - own else ctx.purpose_of_use

    # -- writes ---------------------------------------------------------------------------

    def _check_new_content(self, session: Session, access: Access, rtype: str,
                           resource: dict[str, Any]) -> None:
        if not access.care_team_limited or rtype in DIRECTORY_TYPES or rtype == "Patient":
            return
        # Every Patient reference, not only the compartment elements: a Provenance.target or
        # an Appointment participant would otherwise write into another patient's record.
        patients = set(all_patient_references(resource))
        if not patients:
            return
        allowed = repo.filter_patients(session, patients, self._patients(access))
        if patients - allowed:
            # Same answer as for a patient that does not exist: nothing leaks.
            raise NotFound("The referenced patient is not known")


def all_patient_references(node: Any) -> list[str]:
    """Ids of every local ``Patient/<id>`` reference anywhere in a resource."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            text = item.get("reference")
            if isinstance(text, str):
                parts = text.split("/")
                # Relative references only (Patient/x, Patient/x/_history/n): absolute ones
                # name other servers' patients.
                if parts[0] == "Patient" and len(parts) in (2, 4) and parts[1]:
                    found.append(parts[1])
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return list(dict.fromkeys(found))
