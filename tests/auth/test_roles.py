from __future__ import annotations

import pytest

from ehr.auth.roles import ROLE_CEILING, ROLES, Role, parse_roles, role_ceiling
from ehr.auth.scopes import ScopeSet
from ehr.errors import BadRequest


def test_exactly_the_five_roles() -> None:
    assert {"physician", "nurse", "therapist", "compliance", "admin"} == ROLES
    assert set(ROLE_CEILING) == set(Role)


def test_every_ceiling_entry_parses_as_user_scope() -> None:
    for entries in ROLE_CEILING.values():
        for scope in ScopeSet.parse(entries):
            assert scope.context == "user"


def test_parse_roles() -> None:
    assert parse_roles(["nurse", "therapist"]) == {Role.NURSE, Role.THERAPIST}
    with pytest.raises(BadRequest):
        parse_roles(["Nurse"])
    with pytest.raises(BadRequest):
        parse_roles([])


@pytest.mark.parametrize("role,rtype,perm,allowed", [
    ("physician", "MedicationRequest", "c", True),
    ("nurse", "MedicationRequest", "c", False),
    ("nurse", "MedicationAdministration", "c", True),
    ("nurse", "Observation", "u", True),
    ("therapist", "MedicationAdministration", "c", False),
    ("therapist", "QuestionnaireResponse", "c", True),
    ("therapist", "Patient", "r", True),
    ("compliance", "AuditEvent", "r", True),
    ("compliance", "Observation", "r", False),
    ("admin", "Patient", "r", False),
])
def test_ceiling(role: str, rtype: str, perm: str, allowed: bool) -> None:
    assert role_ceiling([role]).allows("user", rtype, perm) is allowed


def test_several_roles_get_the_union() -> None:
    both = role_ceiling(["nurse", "compliance"])
    assert both.allows("user", "AuditEvent", "r")
    assert both.allows("user", "MedicationAdministration", "c")
    assert not role_ceiling(["admin"])
