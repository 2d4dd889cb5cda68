"""A dose that passes every gate is stored, drawn from its lot, and reads back as charted."""

from __future__ import annotations

from decimal import Decimal

from clinical.dosing.world import FHIR, LOT, MINUTE, Clinic, errors, warnings
from ehr.clinical.dosing.administration import OVERRIDE_URL


def test_a_dose_within_every_gate_is_stored_and_drawn(clinic: Clinic, ready: str,
                                                      now: int) -> None:
    before = clinic.balance()
    response = clinic.post(clinic.dose(35, now - 5 * MINUTE, weight=ready, per_kg=0.5),
                           as_role="nurse", expect=None)
    assert response.status_code == 201, response.text
    assert warnings(response) == []
    assert clinic.balance() == before - Decimal(35)
    stored = clinic.http.get(f"/fhir/MedicationAdministration/{response.json()['id']}").json()
    assert stored["dosage"]["dose"]["value"] == 35
    assert stored["contained"][0]["batch"]["lotNumber"] == LOT
    assert not any(e["url"] == OVERRIDE_URL for e in stored.get("extension", []))


def test_a_refused_dose_draws_nothing(clinic: Clinic, ready: str, now: int) -> None:
    before = clinic.balance()
    response = clinic.post(clinic.dose(80, now - 5 * MINUTE, weight=ready, per_kg=80 / 70),
                           as_role="nurse", expect=422)
    assert any("above the protocol maximum" in e for e in errors(response))
    assert clinic.balance() == before
    search = clinic.http.get(f"/fhir/MedicationAdministration?patient={clinic.patient}",
                             headers=FHIR).json()
    assert search.get("total", len(search.get("entry", []))) == 0
