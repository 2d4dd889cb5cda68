"""Who may do what with the ledger: the role matrix, in one table.

Read it as "<action>: the roles that may do it". Entries record named persons, so system
clients are refused outright; the service itself (``kind == "system"``, when access control
is off or for internal jobs) may do everything. Corrections are kept from nurses on purpose:
whoever can reverse an entry can hide a diversion, so a physician or compliance officer signs
for it with a reason.
"""

from __future__ import annotations

from ehr.context import Actor
from ehr.errors import Forbidden

PHYSICIAN, NURSE, COMPLIANCE, ADMIN = "physician", "nurse", "compliance", "admin"

ROLE_MATRIX: dict[str, frozenset[str]] = {
    "location-read": frozenset({PHYSICIAN, NURSE, COMPLIANCE, ADMIN}),
    "location-write": frozenset({ADMIN, COMPLIANCE}),
    "lot-read": frozenset({PHYSICIAN, NURSE, COMPLIANCE}),
    "receipt": frozenset({PHYSICIAN, NURSE}),
    "waste": frozenset({PHYSICIAN, NURSE}),
    "destruction": frozenset({PHYSICIAN, NURSE, COMPLIANCE}),
    "loss": frozenset({PHYSICIAN, NURSE, COMPLIANCE}),
    "count": frozenset({PHYSICIAN, NURSE, COMPLIANCE}),
    "correction": frozenset({PHYSICIAN, COMPLIANCE}),
    "task-read": frozenset({PHYSICIAN, COMPLIANCE}),
    "task-close": frozenset({PHYSICIAN, COMPLIANCE}),
    "report": frozenset({PHYSICIAN, COMPLIANCE}),
}


def permitted(actor: Actor, action: str) -> bool:
    if actor.kind == "system":
        return True
    if actor.kind != "user":
        return False
    return bool(actor.roles & ROLE_MATRIX[action])


def require(actor: Actor, action: str) -> None:
    if actor.kind == "client":
        raise Forbidden("the controlled-substance ledger records named persons: system "
                        "clients may not use it")
    if not permitted(actor, action):
        roles = ", ".join(sorted(ROLE_MATRIX[action]))
        raise Forbidden(f"ledger {action} needs one of the roles: {roles}")
