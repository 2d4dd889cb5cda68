"""A small clinic for dosing tests: patient, care team, users, eligibility, session, order, lot.

Everything is set up through the service's own paths: FHIR writes, ``/auth/reauth``, the
``$eligibility-decision`` operation, and the ledger's location and receipt functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ehr.auth.roles import role_ceiling
from ehr.clinical.dosing.administration import DOSE_PER_WEIGHT_URL, OVERRIDE_URL
from ehr.clinical.eligibility_decision import SIGNING_ACTION
from ehr.clinical.flags import build_flag
from ehr.clinical.ledger import repository as ledger_repository
from ehr.clinical.ledger.entries import Receipt, record_receipt
from ehr.clinical.ledger.locations import Registration, register
from ehr.clinical.ledger.protocol import load_protocol as ledger_protocol
from ehr.clinical.screening_checklist import CHECKLIST_URL, SECTIONS
from ehr.clinical.terminology import ACT_CODE, LOINC, NDC, RXNORM, SNOMED, UCUM
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.instants import instant, now_us

FHIR = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
PASSWORD = "correct horse battery staple"
MINUTE = 60 * 1_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LOT = "KET-2026-01"
LOCATION = "clinic-main"
DEA = "AB1234563"
ROUTES = {"iv": ("47625008", "Intravenous route"), "im": ("78421000", "Intramuscular route"),
          "intranasal": ("46713006", "Nasal route"), "sublingual": ("37839007", "Sublingual route"),
          "oral": ("26643006", "Oral route")}
DRUGS = {"ketamine": ("6130", "ketamine"), "esketamine": ("2201625", "Spravato")}


def practitioner(role: str) -> str:
    return f"Practitioner/{role}-prac"


@dataclass
class Clinic:
    app: Any
    http: TestClient  # a system client holding every scope
    engine: Engine
    patient: str = ""
    encounter: str = ""
    orders: dict[tuple[str, str], str] = field(default_factory=dict)
    users: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> auth header

    # -- plumbing -----------------------------------------------------------------------------

    def post(self, resource: dict[str, Any], *, as_role: str | None = None,
             expect: int | None = 201) -> Any:
        headers = {**FHIR, **(self.users[as_role] if as_role else {})}
        response = self.http.post(f"/fhir/{resource['resourceType']}", json=resource,
                                  headers=headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def create(self, resource: dict[str, Any], **kw: Any) -> str:
        return str(self.post(resource, **kw).json()["id"])

    def user(self, role: str, username: str | None = None) -> dict[str, str]:
        """A user of ``role`` on the care team, with a password (for re-authentication)."""
        from ehr_testing import bearer

        name = username or f"{role}-user"
        auth = self.app.state.auth
        with unit_of_work(self.engine) as session:
            auth.users.create(session, username=name, password=PASSWORD, roles=[role],
                              display_name=f"{role.title()} {name}",
                              practitioner=practitioner(role))
        header = bearer(self.app, subject=name, kind="user", scopes=str(role_ceiling([role])),
                        roles=(role,), practitioner=practitioner(role))
        self.users[name if username else role] = header
        return header

    def assertion(self, role: str, action: str) -> str:
        response = self.http.post("/auth/reauth", json={"password": PASSWORD, "action": action},
                                  headers=self.users[role])
        assert response.status_code == 200, response.text
        return str(response.json()["assertion"])

    # -- set-up ---------------------------------------------------------------------------------

    def make_patient(self) -> str:
        pid = self.create({"resourceType": "Patient",
                           "name": [{"family": "Dose", "given": ["Dee"]}],
                           "address": [{"line": ["1 Main St"], "city": "Springfield"}]})
        self.create({"resourceType": "CareTeam", "status": "active",
                     "subject": {"reference": f"Patient/{pid}"},
                     "participant": [{"member": {"reference": practitioner(r)}}
                                     for r in ("physician", "nurse", "therapist")]})
        return pid

    def make_eligible(self, patient: str, *, decided_us: int | None = None) -> None:
        answers = []
        for group, _, items in SECTIONS:
            answers.append({"linkId": group, "item": [
                {"linkId": i.link_id,
                 "answer": [{"valueInteger": 120 if i.link_id == "bp-systolic" else 80}
                            if i.kind == "integer" else {"valueBoolean": False}]}
                for i in items]})
        self.create({"resourceType": "QuestionnaireResponse", "status": "completed",
                     "questionnaire": CHECKLIST_URL, "subject": {"reference": f"Patient/{patient}"},
                     "authored": instant(now_us() - 11 * DAY), "item": answers})
        pipeline = self.app.state.pipeline
        clock = pipeline.clock
        pipeline.clock = lambda: decided_us or now_us() - 10 * DAY
        try:
            response = self.http.post(
                f"/fhir/Patient/{patient}/$eligibility-decision", headers={
                    **FHIR, **self.users["physician"]},
                json={"resourceType": "Parameters", "parameter": [
                    {"name": "status", "valueCode": "eligible"},
                    {"name": "signingAssertion",
                     "valueString": self.assertion("physician", SIGNING_ACTION)}]})
        finally:
            pipeline.clock = clock
        assert response.status_code == 201, response.text

    def make_location_and_lot(self, mg_total: Decimal = Decimal(5000)) -> None:
        self.http.put(f"/fhir/Location/{LOCATION}", headers=FHIR, json={
            "resourceType": "Location", "id": LOCATION, "name": "Main clinic",
            "address": {"line": ["1 Clinic Way"], "city": "Springfield", "state": "IL"}})
        ctx = RequestContext(actor=SYSTEM)
        with unit_of_work(self.engine) as session:
            register(session, SYSTEM, Registration(LOCATION, DEA))
            self.receive(session, ctx, LOT, mg_total)

    def receive(self, session: Any, ctx: RequestContext, lot: str, mg_total: Decimal,
                expiry: dt.date | None = None) -> None:
        vials = int(mg_total / 500)
        record_receipt(session, ctx, ledger_protocol(), Receipt(
            location_id=LOCATION, lot_number=lot, drug="ketamine hydrochloride injection",
            form="injection solution", strength="50 mg/mL", container_ml=Decimal(10),
            containers=vials, expiry=expiry or dt.date.today() + dt.timedelta(days=365),
            received=dt.date.today() - dt.timedelta(days=20), supplier_name="Pharma Supply",
            supplier_address="2 Depot Rd", supplier_dea="BP1234563", invoice_number="INV-1",
            ndc="0409-2053-10", rxnorm="6130"))

    def balance(self, lot: str = LOT) -> Decimal:
        with unit_of_work(self.engine) as session:
            location = ledger_repository.location(session, LOCATION)
            assert location is not None and location.id is not None
            rows = dict((l.lot_number, b.mg) for l, b in  # noqa: E741
                        ledger_repository.lots(session, location.id))
        return Decimal(rows[lot])

    def make_session(self, patient: str, status: str = "in-progress") -> str:
        return self.create({
            "resourceType": "Encounter", "status": status,
            "class": {"system": ACT_CODE, "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
            "location": [{"location": {"reference": f"Location/{LOCATION}"}}]})

    def order(self, route: str, drug: str = "ketamine", *, mg: float | None = None,
              patient: str | None = None) -> str:
        key = (route, drug)
        if key in self.orders and mg is None and patient is None:
            return self.orders[key]
        code, display = DRUGS[drug]
        instruction: dict[str, Any] = {"route": _route(route)}
        if mg is not None:
            instruction["doseAndRate"] = [{"doseQuantity": _mg(mg)}]
        rid = self.create({
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code,
                                                      "display": display}]},
            "subject": {"reference": f"Patient/{patient or self.patient}"},
            "requester": {"reference": practitioner("physician")},
            "dosageInstruction": [instruction]}, as_role="physician")
        if mg is None and patient is None:
            self.orders[key] = rid
        return rid

    # -- clinical records ---------------------------------------------------------------------

    def blocking_flag(self, patient: str | None = None) -> str:
        return self.create(build_flag(patient or self.patient, "cssrs-high-risk",
                                      "C-SSRS high risk", blocks_dosing=True))

    def vitals(self, at_us: int, *, sbp: float = 120, dbp: float = 80, hr: float = 72,
               spo2: float = 98, rr: float = 14, patient: str | None = None) -> None:
        """BP as a panel, HR, SpO2 and RR at ``at_us``."""
        subject = {"reference": f"Patient/{patient or self.patient}"}
        self.create(_observation(subject, "85354-9", at_us, components=[
            ("8480-6", sbp, "mm[Hg]"), ("8462-4", dbp, "mm[Hg]")]))
        for code, value, unit in (("8867-4", hr, "/min"), ("2708-6", spo2, "%"),
                                  ("9279-1", rr, "/min")):
            self.create(_observation(subject, code, at_us, value=(value, unit)))

    def weight(self, kg: float, at_us: int, *, patient: str | None = None) -> str:
        return self.create(_observation({"reference": f"Patient/{patient or self.patient}"},
                                        "29463-7", at_us, value=(kg, "kg")))

    def dose(self, mg: float, at_us: int, *, route: str = "iv", weight: str | None = None,
             per_kg: float | None = None, drug: str | None = None, lot: str = LOT,
             status: str = "completed", override: dict[str, Any] | None = None,
             order: str | None = None, encounter: str | None = None,
             patient: str | None = None) -> dict[str, Any]:
        """A MedicationAdministration as a client would chart it."""
        drug = drug or ("esketamine" if route == "intranasal" else "ketamine")
        code, display = DRUGS[drug]
        medication: dict[str, Any] = {
            "resourceType": "Medication", "id": "med",
            "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]},
            "batch": {"lotNumber": lot}}
        if drug == "esketamine":
            medication["code"]["coding"].append({"system": NDC, "code": "50458-028-03"})
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration", "status": status,
            "contained": [medication], "medicationReference": {"reference": "#med"},
            "subject": {"reference": f"Patient/{patient or self.patient}"},
            "context": {"reference": f"Encounter/{encounter or self.encounter}"},
            "performer": [{"actor": {"reference": practitioner("nurse")}}],
            "request": {"reference": f"MedicationRequest/{order or self.order(route, drug)}"},
            "dosage": {"route": _route(route), "dose": _mg(mg)},
        }
        if route == "iv":
            resource["effectivePeriod"] = {"start": instant(at_us)}
            resource["dosage"]["rateQuantity"] = {"value": round(mg * 1.5, 3), "unit": "mg/h",
                                                  "system": UCUM, "code": "mg/h"}
        else:
            resource["effectiveDateTime"] = instant(at_us)
        extensions = []
        if weight is not None:
            resource["supportingInformation"] = [{"reference": f"Observation/{weight}"}]
        if per_kg is not None:
            extensions.append({"url": DOSE_PER_WEIGHT_URL, "valueQuantity": {
                "value": per_kg, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}})
        if override is not None:
            extensions.append(override)
        if extensions:
            resource["extension"] = extensions
        return resource


def override(reason: str | None, assertion: str | None) -> dict[str, Any]:
    parts = []
    if reason is not None:
        parts.append({"url": "reason", "valueString": reason})
    if assertion is not None:
        parts.append({"url": "assertion", "valueString": assertion})
    return {"url": OVERRIDE_URL, "extension": parts}


def _route(route: str) -> dict[str, Any]:
    code, display = ROUTES[route]
    return {"coding": [{"system": SNOMED, "code": code, "display": display}]}


def _mg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}


def _observation(subject: dict[str, Any], code: str, at_us: int, *,
                 value: tuple[float, str] | None = None,
                 components: list[tuple[str, float, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": subject, "effectiveDateTime": instant(at_us)}
    if value is not None:
        out["valueQuantity"] = {"value": value[0], "unit": value[1], "system": UCUM,
                                "code": value[1]}
    if components:
        out["component"] = [{"code": {"coding": [{"system": LOINC, "code": c}]},
                             "valueQuantity": {"value": v, "unit": u, "system": UCUM, "code": u}}
                            for c, v, u in components]
    return out


def errors(response: Any) -> list[str]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [i["diagnostics"] for i in body["issue"] if i["severity"] in ("error", "fatal")]


def warnings(response: Any) -> list[str]:
    import json

    raw = response.headers.get("X-FHIR-Outcome")
    issues = json.loads(raw) if raw else []
    return [i["diagnostics"] for i in issues if i["severity"] == "warning"]
