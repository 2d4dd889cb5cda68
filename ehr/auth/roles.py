"""Roles and their scope ceilings: the most a token of each role may ever carry.

This is the coarse gate (what a token can say); the policy layer decides, per request, which
patients and records inside that ceiling a user may touch. Read the table as
"a <role> may be granted <scopes>"; a user with several roles gets the union.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from ehr.auth.scopes import ScopeSet
from ehr.errors import BadRequest


class Role(StrEnum):
    PHYSICIAN = "physician"
    NURSE = "nurse"
    THERAPIST = "therapist"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


ROLES: frozenset[str] = frozenset(r.value for r in Role)

ROLE_CEILING: dict[Role, tuple[str, ...]] = {
    # Orders and charts doses; the only writer of MedicationRequest (enforced by policy).
    Role.PHYSICIAN: ("user/*.cruds",),
    # Vitals and administration under an order.
    Role.NURSE: ("user/*.rs",
                 "user/Observation.cu",
                 "user/MedicationAdministration.cu",
                 # Sessions (arrival, monitoring) and their adverse events.
                 "user/Encounter.cu",
                 "user/AdverseEvent.cu"),
    # Screenings, preparation and integration notes; never doses.
    Role.THERAPIST: ("user/*.rs",
                     "user/QuestionnaireResponse.cru",
                     "user/DocumentReference.cru",
                     "user/Composition.cru",
                     "user/Flag.cru"),
    # Audit trail and provenance; notes as listings (type, date, author) whose content the
    # policy layer strips, found by search or read by id. The controlled-substance ledger has
    # permissions of its own (``ehr.clinical.ledger.permissions``).
    Role.COMPLIANCE: ("user/AuditEvent.rs",
                      "user/Provenance.rs",
                      "user/DocumentReference.rs",
                      "user/Composition.rs"),
    # Users and clients through the admin endpoints only: no clinical data at all.
    Role.ADMIN: (),
}


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Validate role names (exact, lower case); at least one is required."""
    roles: set[Role] = set()
    for value in values:
        name = value.strip()
        if name not in ROLES:
            raise BadRequest(f"unknown role {value!r}; roles are: {', '.join(sorted(ROLES))}")
        roles.add(Role(name))
    if not roles:
        raise BadRequest("a user needs at least one role")
    return frozenset(roles)


def role_ceiling(roles: Iterable[str]) -> ScopeSet:
    """The union of the ceilings of ``roles`` (unknown names contribute nothing)."""
    ceiling = ScopeSet()
    for name in roles:
        if name in ROLES:
            ceiling = ceiling.union(ScopeSet.parse(ROLE_CEILING[Role(name)]))
    return ceiling
