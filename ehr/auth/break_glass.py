"""Break-the-glass: time-boxed emergency access to a patient outside one's care team.

A clinician states a reason; the grant opens the patient's records for a limited time (60
minutes by default), every request it covers is marked as emergency use (purpose of use
``ETREAT``), and the grant waits in a review queue until compliance signs it off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from ehr.audit.events import AccessEvent
from ehr.auth import access_repository as repo
from ehr.auth.access_tables import BreakGlassRow
from ehr.auth.policy import CLINICAL_ROLES
from ehr.auth.roles import Role
from ehr.auth.users import EventRecorder
from ehr.context import RequestContext
from ehr.errors import BadRequest, Forbidden, NotFound
from ehr.store.repository import get_current

MIN_REASON = 10
EMERGENCY = "ETREAT"  # the purpose of use of everything a grant opens


@dataclass(frozen=True)
class Grant:
    id: int
    patient_id: str
    expires_at: int


class BreakGlass:
    """Grants and reviews are audited (category ``security``) in the transaction that makes
    them, when a recorder is given."""

    def __init__(self, clock: Callable[[], int], minutes: int = 60,
                 recorder: EventRecorder | None = None) -> None:
        self.clock = clock
        self.minutes = minutes
        self.recorder = recorder

    def with_recorder(self, recorder: EventRecorder | None) -> BreakGlass:
        return BreakGlass(self.clock, self.minutes, recorder)

    def request(self, session: Session, ctx: RequestContext, patient: str, reason: str) -> Grant:
        actor = ctx.actor
        if actor.kind != "user" or not (set(actor.roles) & {r.value for r in CLINICAL_ROLES}):
            raise Forbidden("Only clinicians may use break-the-glass access")
        reason = (reason or "").strip()
        if len(reason) < MIN_REASON:
            raise BadRequest(f"State the emergency: a reason of at least {MIN_REASON} characters",
                             expression=("reason",))
        patient_id = patient.removeprefix("Patient/")
        found = get_current(session, "Patient", patient_id)
        if found is None or found.deleted:
            raise NotFound(f"Patient/{patient_id} is not known", expression=("patient",))
        now = self.clock()
        expires = now + self.minutes * 60 * 1_000_000
        grant_id = repo.create_break_glass(
            session, username=actor.id, patient_id=patient_id, reason=reason, now=now,
            expires_at=expires, request_id=ctx.request_id)
        if self.recorder is not None:
            self.recorder.record(session, ctx, AccessEvent(
                "break-glass-granted", "Patient", patient_id, status=201,
                patients=(patient_id,), category="security",
                detail={"purpose_of_use": EMERGENCY, "grant": grant_id, "expires_at": expires,
                        "reason": reason[:500]}))
        return Grant(grant_id, patient_id, expires)

    def queue(self, session: Session, ctx: RequestContext, *, open_only: bool
              ) -> list[BreakGlassRow]:
        self._require_reviewer(ctx)
        rows = repo.list_break_glass(session, open_only=open_only)
        if self.recorder is not None:
            self.recorder.record(session, ctx, AccessEvent(
                "break-glass-queue", status=200, patients=tuple(r.patient_id for r in rows),
                category="security", detail={"open_only": open_only, "count": len(rows)}))
        return rows

    def review(self, session: Session, ctx: RequestContext, grant_id: int, note: str) -> None:
        self._require_reviewer(ctx)
        if not (note or "").strip():
            raise BadRequest("A review needs a note", expression=("note",))
        grant = session.get(BreakGlassRow, grant_id)
        if grant is None or not repo.review_break_glass(
                session, grant_id, reviewer=ctx.actor.id, note=note.strip(), now=self.clock()):
            raise NotFound(f"No open break-the-glass grant {grant_id}")
        if self.recorder is not None:
            self.recorder.record(session, ctx, AccessEvent(
                "break-glass-reviewed", "Patient", grant.patient_id, status=204,
                patients=(grant.patient_id,), category="security",
                detail={"grant": grant_id, "grantee": grant.username}))

    @staticmethod
    def _require_reviewer(ctx: RequestContext) -> None:
        if ctx.actor.kind != "user" or Role.COMPLIANCE.value not in ctx.actor.roles:
            raise Forbidden("Only compliance officers review break-the-glass access")
