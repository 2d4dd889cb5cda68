"""Who may order and who may chart a dose."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from clinical.dosing.world import DRUGS, Clinic, _route, errors
from ehr.app import build_pipeline
from ehr.clinical.terminology import RXNORM
from ehr.config import Settings
from ehr.context import Actor, RequestContext
from ehr.db import unit_of_work
from ehr.errors import Unprocessable
from ehr.fhir.writer import Writer


@pytest.mark.parametrize(("role", "status"), [("physician", 201), ("nurse", 201),
                                              ("therapist", 403)])
def test_who_may_chart_a_dose(clinic: Clinic, ready: str, now: int, role: str,
                              status: int) -> None:
    response = clinic.post(clinic.dose(35, now, weight=ready, per_kg=0.5), as_role=role,
                           expect=status)
    assert response.json()["resourceType"] in ("MedicationAdministration", "OperationOutcome")


@pytest.mark.parametrize(("role", "status"), [("physician", 201), ("nurse", 403),
                                              ("therapist", 403)])
def test_only_a_physician_orders(clinic: Clinic, role: str, status: int) -> None:
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6130"}]},
             "subject": {"reference": f"Patient/{clinic.patient}"},
             "dosageInstruction": [{"route": _route("iv")}]}
    clinic.post(order, as_role=role, expect=status)


def test_an_order_above_the_route_maximum_is_refused(clinic: Clinic) -> None:
    code, _ = DRUGS["esketamine"]
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
             "subject": {"reference": f"Patient/{clinic.patient}"},
             "dosageInstruction": [{"route": _route("intranasal"), "doseAndRate": [
                 {"doseQuantity": {"value": 112, "unit": "mg",
                                   "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}
    response = clinic.post(order, as_role="physician", expect=422)
    assert any("above the protocol maximum of 84 mg" in e for e in errors(response))
    wrong_route = {**order, "dosageInstruction": [{"route": _route("iv")}]}
    response = clinic.post(wrong_route, as_role="physician", expect=422)
    assert any("is not given by the intravenous route" in e for e in errors(response))


def test_the_rule_refuses_non_physician_orders_even_without_the_policy(
        settings: Settings, engine: Engine) -> None:
    """Defence in depth: with no access guard (benchmarks), the role check still holds."""
    pipeline = build_pipeline(settings.model_copy(update={"auth_required": False}))
    nurse = RequestContext(actor=Actor("n1", "user", roles=frozenset({"nurse"})))
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "ondansetron"},
             "subject": {"reference": "Patient/p1"}}
    with pytest.raises(Unprocessable) as refused, unit_of_work(engine) as session:
        Writer(pipeline, session, nurse).create("MedicationRequest", order)
    assert "only a physician may order" in refused.value.diagnostics
