"""Care-team membership kept in step with the records that define it.

CareTeam (subject + participant members) and EpisodeOfCare (patient + care manager) resources
are the source of truth; ``care_team_member`` is rebuilt from each one as it is written, in the
same transaction. A user who registers a patient joins that patient's team.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from ehr.auth import access_repository as repo
from ehr.auth.access_repository import Membership
from ehr.auth.policy import member_keys
from ehr.context import RequestContext
from ehr.dates import MAX_TIME, MIN_TIME, period_range
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource

_MEMBER_TYPES = ("Practitioner/", "PractitionerRole/")
# The source of the membership a user gets by registering a patient (no resource behind it).
REGISTRATION = "registration"


def _ref(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("reference"), str):
        return str(node["reference"])
    return None


def participant_period(participant: dict[str, Any]) -> tuple[int | None, int | None] | None:
    """A participant's period as [starts_at, ends_at) microseconds, None on an open side;
    None in all when it cannot be read (the participant then grants nothing)."""
    period = participant.get("period")
    if period is None:
        return None, None
    try:
        low, high = period_range(period.get("start"), period.get("end"))
    except (AttributeError, TypeError, ValueError):
        return None
    return (None if low == MIN_TIME else low), (None if high == MAX_TIME else high)


def care_team_members(resource: dict[str, Any]) -> list[Membership]:
    patient = _ref(resource.get("subject"))
    # A suspended team is halted: its members lose access until it is active again.
    if not patient or not patient.startswith("Patient/") or resource.get("status") in (
        "suspended", "inactive", "entered-in-error"):
        return []
    pid = patient.split("/")[1]
    out: list[Membership] = []
    for part in resource.get("participant", []):
        member = _ref(part.get("member")) if isinstance(part, dict) else None
        period = (participant_period(part) if member and member.startswith(_MEMBER_TYPES)
                  else None)
        if member and period is not None:
            out.append((pid, member, *period))
    return out


def episode_members(resource: dict[str, Any]) -> list[Membership]:
    patient = _ref(resource.get("patient"))
    manager = _ref(resource.get("careManager"))
    if not patient or not patient.startswith("Patient/") or resource.get("status") in (
        "finished", "cancelled", "entered-in-error"):
        return []
    if manager and manager.startswith(_MEMBER_TYPES):
        return [(patient.split("/")[1], manager, None, None)]
    return []


def _rebuild(extract: Callable[[dict[str, Any]], list[Membership]], clock: Callable[[], int]
             ) -> Callable[[Session, RequestContext, Change], None]:
    def rule(session: Session, ctx: RequestContext, change: Change) -> None:
        members = extract(change.resource) if change.resource is not None else []
        source = f"{change.rtype}/{change.rid}"

        def after(session: Session, stored: StoredResource) -> None:
            repo.replace_membership(session, source, members, clock())

        change.after_store.append(after)

    return rule


def _registration(clock: Callable[[], int]) -> Callable[[Session, RequestContext, Change], None]:
    def rule(session: Session, ctx: RequestContext, change: Change) -> None:
        if change.interaction != "create" or ctx.actor.kind != "user":
            return
        keys = member_keys(ctx.actor)

        def after(session: Session, stored: StoredResource) -> None:
            # The practitioner link when there is one, else the user itself.
            repo.add_member(session, stored.rid, keys[-1], REGISTRATION, clock())

        change.after_store.append(after)

    return rule


def register_care_team_rules(registry: RuleRegistry, clock: Callable[[], int]) -> None:
    registry.register("CareTeam", _rebuild(care_team_members, clock))
    registry.register("EpisodeOfCare", _rebuild(episode_members, clock))
    registry.register("Patient", _registration(clock))
