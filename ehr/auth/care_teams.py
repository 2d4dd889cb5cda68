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
from ehr.auth.policy import member_keys
from ehr.context import RequestContext
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource

_MEMBER_TYPES = ("Practitioner/", "PractitionerRole/")
# The source of the membership a user gets by registering a patient (no resource behind it).
REGISTRATION = "registration"


def _ref(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("reference"), str):
        return str(node["reference"])
    return None


def care_team_members(resource: dict[str, Any]) -> list[tuple[str, str]]:
    patient = _ref(resource.get("subject"))
    # A suspended team is halted: its members lose access until it is active again.
    if not patient or not patient.startswith("Patient/") or resource.get("status") in (
        "suspended", "inactive", "entered-in-error"):
        return []
    pid = patient.split("/")[1]
    members = [_ref(p.get("member")) for p in resource.get("participant", [])
               if isinstance(p, dict)]
    return [(pid, m) for m in members if m and m.startswith(_MEMBER_TYPES)]


def episode_members(resource: dict[str, Any]) -> list[tuple[str, str]]:
    patient = _ref(resource.get("patient"))
    manager = _ref(resource.get("careManager"))
    if not patient or not patient.startswith("Patient/") or resource.get("status") in (
        "finished", "cancelled", "entered-in-error"):
        return []
    if manager and manager.startswith(_MEMBER_TYPES):
        return [(patient.split("/")[1], manager)]
    return []


def _rebuild(extract: Callable[[dict[str, Any]], list[tuple[str, str]]], clock: Callable[[], int]
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
