from __future__ import annotations

import pytest

from ehr.auth.scopes import InvalidScope, Scope, ScopeSet, parse_scope, parse_scopes


@pytest.mark.parametrize("text,expected", [
    ("user/Observation.rs", Scope("user", "Observation", "rs")),
    ("system/*.cruds", Scope("system", "*", "cruds")),
    ("patient/Patient.r", Scope("patient", "Patient", "r")),
    ("user/Observation.sr", Scope("user", "Observation", "rs")),  # normalised order
    ("user/Observation.read", Scope("user", "Observation", "rs")),  # v1
    ("user/Observation.write", Scope("user", "Observation", "cud")),
    ("system/*.*", Scope("system", "*", "cruds")),
    ("patient/Observation.rs?category=vital-signs",
     Scope("patient", "Observation", "rs", "?category=vital-signs")),
])
def test_parse(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize("text", ["openid", "fhirUser", "launch", "launch/patient",
                                  "offline_access", "online_access"])
def test_tolerated_scopes_carry_no_data(text: str) -> None:
    assert parse_scope(text) is None


@pytest.mark.parametrize("text", ["user/Observation", "admin/*.rs", "user/observation.rs",
                                  "user/Observation.x", "user/Observation.rr",
                                  "user/*.readwrite", "Observation.read", "user/.rs"])
def test_malformed_scopes_are_refused(text: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(text)


def test_str_round_trip() -> None:
    for text in ("user/Observation.rs", "system/*.cruds", "patient/Patient.r"):
        parsed = parse_scope(text)
        assert parsed is not None
        assert str(parsed) == text


def test_set_merges_and_wildcard_absorbs() -> None:
    scopes = ScopeSet.parse("user/Observation.r user/Observation.s user/*.r user/Patient.rs")
    assert str(scopes) == "user/*.r user/Observation.s user/Patient.s"
    assert scopes.allows("user", "Observation", "s")
    assert scopes.allows("user", "Encounter", "r")
    assert not scopes.allows("user", "Encounter", "s")
    assert not scopes.allows("system", "Observation", "r")


def test_tolerated_are_skipped_when_parsing_many() -> None:
    assert parse_scopes("openid fhirUser user/Patient.read") == [Scope("user", "Patient", "rs")]


def test_intersect_specific_within_wildcard() -> None:
    ceiling = ScopeSet.parse("user/*.rs user/Observation.cu")
    asked = ScopeSet.parse("user/Observation.cruds user/Patient.cruds")
    assert str(asked.intersect(ceiling)) == "user/Observation.crus user/Patient.rs"


def test_intersect_wildcard_request_narrows_to_ceiling_types() -> None:
    ceiling = ScopeSet.parse("user/AuditEvent.rs user/Provenance.r")
    assert str(ScopeSet.parse("user/*.*").intersect(ceiling)) == \
        "user/AuditEvent.rs user/Provenance.r"


def test_intersect_never_crosses_contexts_nor_grants_fine_grained() -> None:
    ceiling = ScopeSet.parse("system/*.rs")
    asked = ScopeSet.parse("user/*.rs patient/Observation.rs system/Observation.rs?code=x")
    assert not asked.intersect(ceiling)


def test_intersection_is_within_both() -> None:
    ceiling = ScopeSet.parse("user/*.rs user/Observation.cu user/Flag.cru")
    asked = ScopeSet.parse("user/*.cruds")
    granted = asked.intersect(ceiling)
    for scope in granted:
        for perm in scope.permissions:
            rtype = "Anything" if scope.resource_type == "*" else scope.resource_type
            assert ceiling.allows("user", rtype, perm)
            assert asked.allows("user", rtype, perm)
