"""A physician's signed override of failed pre-dose vitals, and what it cannot override."""

from __future__ import annotations

from clinical.dosing.world import MINUTE, Clinic, errors, override, warnings
from ehr.clinical.dosing.administration import OVERRIDE_URL
from ehr.clinical.dosing.override import ACTION

REASON = "BP 190/100 after a stressful drive; rechecked, asymptomatic, benefit outweighs risk"


def _high_bp(clinic: Clinic, now: int) -> str:
    clinic.vitals(now - 10 * MINUTE, sbp=190, dbp=100)
    return clinic.weight(70, now - 60 * MINUTE)


def test_signed_override_lets_the_dose_through_and_is_recorded(clinic: Clinic,
                                                               now: int) -> None:
    weight = _high_bp(clinic, now)
    token = clinic.assertion("physician", ACTION)
    body = clinic.dose(35, now, weight=weight, per_kg=0.5, override=override(REASON, token))
    response = clinic.post(body, as_role="physician", expect=201)
    assert any("overridden by" in w for w in warnings(response))
    stored = clinic.http.get(f"/fhir/MedicationAdministration/{response.json()['id']}").json()
    ext = next(e for e in stored["extension"] if e["url"] == OVERRIDE_URL)
    parts = {p["url"]: p for p in ext["extension"]}
    assert parts["reason"]["valueString"] == REASON
    assert parts["signer"]["valueString"] == "physician-user"
    assert "reauthenticated" in parts and "overrides" in parts
    assert "assertion" not in parts
    assert token not in str(stored)


def test_an_assertion_is_used_once(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    token = clinic.assertion("physician", ACTION)
    clinic.post(clinic.dose(35, now - 2 * 24 * 60 * MINUTE + 0, weight=weight, per_kg=0.5,
                            override=override(REASON, token)), as_role="physician", expect=422)
    # The refused write rolled the consumption back: the same assertion still works once...
    first = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5,
                                    override=override(REASON, token)), as_role="physician")
    assert first.status_code == 201
    # ...and only once.
    again = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5,
                                    override=override(REASON, token)),
                        as_role="physician", expect=422)
    assert any("already used" in e for e in errors(again)), errors(again)


def test_override_needs_reason_and_assertion(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    response = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5,
                                       override=override(None, None)),
                           as_role="physician", expect=422)
    found = errors(response)
    assert any("typed reason" in e for e in found), found
    assert any("signing assertion" in e for e in found), found
    assert any("(override not accepted)" in e for e in found), found


def test_forged_or_foreign_assertions_are_refused(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    clinic.user("physician", "second-doc")
    foreign = clinic.assertion("second-doc", ACTION)
    for token in ("not-a-jwt", foreign, clinic.assertion("physician", "note-signing")):
        response = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5,
                                           override=override(REASON, token)),
                               as_role="physician", expect=422)
        assert any("assertion refused" in e for e in errors(response)), errors(response)


def test_a_nurse_cannot_override(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    token = clinic.assertion("nurse", ACTION)
    response = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5,
                                       override=override(REASON, token)),
                           as_role="nurse", expect=422)
    assert any("only a physician" in e for e in errors(response))


def test_a_client_cannot_claim_a_signer(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    forged = override(REASON, None)
    forged["extension"].append({"url": "signer", "valueString": "physician-user"})
    response = clinic.post(clinic.dose(35, now, weight=weight, per_kg=0.5, override=forged),
                           as_role="physician", expect=422)
    assert any("written by the server" in e for e in errors(response))


def test_override_does_not_cover_the_maximum_or_eligibility(clinic: Clinic, now: int) -> None:
    weight = _high_bp(clinic, now)
    clinic.blocking_flag()
    token = clinic.assertion("physician", ACTION)
    response = clinic.post(clinic.dose(80, now, weight=weight, per_kg=round(80 / 70, 4),
                                       override=override(REASON, token)),
                           as_role="physician", expect=422)
    found = errors(response)
    assert any("above the protocol maximum" in e for e in found), found
    assert any("blocks dosing" in e for e in found), found
