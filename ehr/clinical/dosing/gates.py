"""The safety gates a ketamine dose passes before it is stored, all in the write's transaction.

Every gate runs and adds its own issues, so a refused dose lists every reason at once:
eligibility, blocking flags, pre-dose vitals (overridable by a signed physician decision),
the protocol maximum for the route (by weight no older than allowed), the interval between
sessions, the session and order it belongs to, and the lot it is drawn from (ledger).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlmodel import Session

from ehr.clinical import eligibility, safety_flags
from ehr.clinical.dosing import repository
from ehr.clinical.dosing.administration import (
    NOT_GIVEN,
    Dose,
    drug_of,
    local_id,
)
from ehr.clinical.dosing.override import AssertionVerifier, apply_override
from ehr.clinical.dosing.protocol import DosingProtocol
from ehr.clinical.dosing.vitals import (
    DAY_US,
    MINUTE_US,
    newer_weight,
    pre_dose_findings,
    weight_of,
)
from ehr.clinical.ledger.draws import DrawRequest, draw_location, draw_problems
from ehr.clinical.terminology import SNOMED, UCUM
from ehr.context import RequestContext
from ehr.store.hooks import Change

HOUR_US = 60 * MINUTE_US
ADMINISTERING_ROLES = frozenset({"physician", "nurse"})
_ENCOUNTER_CLOSED = frozenset({"planned", "cancelled", "entered-in-error"})
_ORDER_USABLE = frozenset({"active", "completed"})
MA = "MedicationAdministration"


@dataclass(frozen=True)
class Gatekeeper:
    protocol: DosingProtocol
    verifier: AssertionVerifier

    def check(self, session: Session, ctx: RequestContext, change: Change, dose: Dose,
              now_us: int) -> DrawRequest | None:
        """Add every failed gate to ``change``; the ledger draw to make if all passed."""
        for text, path in dose.problems:
            change.error("required" if "must" in text or "needs" in text else "value",
                         text, path)
        if ctx.actor.kind == "user" and not ADMINISTERING_ROLES & ctx.actor.roles:
            change.error("forbidden", "only a physician or a nurse may chart a dose")
        if dose.patient_id is None:
            return None
        repository.lock_patient_dosing(session, dose.patient_id)
        at = dose.effective_us
        skew = self.protocol.future_skew_minutes * MINUTE_US
        if at is not None and at > now_us + skew:
            change.error("business-rule", "a dose cannot be charted for a time in the future",
                         f"{MA}.effective")
        when = at if at is not None else now_us
        self._eligibility(session, change, dose.patient_id, when)
        self._flags(session, change, dose.patient_id)
        if at is not None:
            self._vitals(session, ctx, change, dose, at)
            self._interval(session, change, dose, at, change.rid)
        self._maximum(session, change, dose, when)
        self._links(session, change, dose)
        return self._ledger(session, ctx, change, dose, when)

    # -- the gates ------------------------------------------------------------------------

    def _eligibility(self, session: Session, change: Change, patient_id: str,
                     at_us: int) -> None:
        status = eligibility.current_eligibility(session, patient_id, at_us)
        if status.status != "eligible":
            why = "; ".join(status.reasons)
            change.error("business-rule", f"the patient's eligibility is {status.status!r}, "
                         f"not 'eligible'{': ' + why if why else ''} (a current, signed "
                         "eligibility decision is required before any dose)", f"{MA}.subject")
        elif status.decided_us is not None and status.decided_us > at_us:
            change.error("business-rule", "the dose is dated before the eligibility decision "
                         f"({status.decision}) that allows it", f"{MA}.effective")

    def _flags(self, session: Session, change: Change, patient_id: str) -> None:
        for flag in safety_flags.blocking_flags(session, patient_id):
            text = (flag.get("code") or {}).get("text") or "a safety alert"
            change.error("business-rule", f"Flag/{flag.get('id')} ({text}) blocks dosing until "
                         "a physician reviews it", f"{MA}.subject")

    def _vitals(self, session: Session, ctx: RequestContext, change: Change, dose: Dose,
                at_us: int) -> None:
        assert dose.patient_id is not None
        findings, _ = pre_dose_findings(session, dose.patient_id, at_us, self.protocol)
        for f in findings:
            if f.severity == "warning":
                change.warning("business-rule", f.text)
        failures = [f for f in findings if f.severity == "error"]
        apply_override(session, ctx, change, dose.override, failures, self.verifier,
                       self.protocol.overridable)

    def _maximum(self, session: Session, change: Change, dose: Dose, at_us: int) -> None:
        route, mg = dose.route, dose.mg
        if route is None or mg is None or dose.patient_id is None:
            return
        where = f"{MA}.dosage.dose"
        if route.max_mg is not None and mg > route.max_mg:
            change.error("business-rule", f"{mg} mg is above the protocol maximum of "
                         f"{route.max_mg} mg per session by the {route.display.lower()}", where)
        if not route.weight_based:
            return
        if dose.weight_id is None:
            change.error("required", "a weight-based dose needs the weight used: "
                         "supportingInformation must reference a body weight Observation "
                         f"(LOINC {self.protocol.weight_loinc})", f"{MA}.supportingInformation")
            return
        weight, problem = weight_of(session, dose.weight_id, dose.patient_id, self.protocol)
        if weight is None:
            change.error("business-rule", str(problem), f"{MA}.supportingInformation")
            return
        age = at_us - weight.at_us
        max_age = self.protocol.weight_max_age_days * DAY_US
        if age > max_age or age < -self.protocol.future_skew_minutes * MINUTE_US:
            change.error("business-rule", f"Observation/{dose.weight_id} is not a weight from "
                         f"the {self.protocol.weight_max_age_days} days before the dose",
                         f"{MA}.supportingInformation")
            return
        if self.protocol.weight_warn_not_today and age > DAY_US:
            change.warning("business-rule", "the weight used was not recorded on the day of "
                           "the dose", f"{MA}.supportingInformation")
        newer = newer_weight(session, dose.patient_id, weight.at_us, at_us, self.protocol)
        if newer is not None:
            change.warning("business-rule", f"{newer.observation} is a more recent weight than "
                           f"Observation/{dose.weight_id}", f"{MA}.supportingInformation")
        self._per_kg(change, dose, mg, weight.kg)

    def _per_kg(self, change: Change, dose: Dose, mg: Decimal, kg: Decimal) -> None:
        route = dose.route
        assert route is not None and route.max_mg_per_kg is not None
        per_kg = mg / kg
        shown = per_kg.quantize(Decimal("0.001"), ROUND_HALF_UP)
        if per_kg > route.max_mg_per_kg:
            change.error("business-rule", f"{mg} mg for {kg.normalize()} kg is {shown} mg/kg, "
                         f"above the protocol maximum of {route.max_mg_per_kg} mg/kg by the "
                         f"{route.display.lower()}", f"{MA}.dosage.dose")
        elif route.usual is not None and per_kg > route.usual[1]:
            change.warning("business-rule", f"{shown} mg/kg is above the usual "
                           f"{route.usual[0]}-{route.usual[1]} mg/kg", f"{MA}.dosage.dose")
        stated = dose.stated_mg_per_kg
        if stated is None:
            change.error("required", "a weight-based dose must state the mg/kg given "
                         "(extension dose-per-body-weight, UCUM mg/kg)", f"{MA}.extension")
        elif abs(stated - per_kg) > self.protocol.mg_per_kg_tolerance:
            change.error("value", f"the stated {stated} mg/kg does not match the dose and "
                         f"weight ({shown} mg/kg)", f"{MA}.extension")

    def _interval(self, session: Session, change: Change, dose: Dose, at_us: int,
                  rid: str) -> None:
        assert dose.patient_id is not None
        gap = int(self.protocol.min_interval_hours * HOUR_US)
        week = 7 * DAY_US
        earlier = 0
        for row in repository.administrations(session, dose.patient_id, at_us - week,
                                              at_us + gap, excluding=rid):
            other = json.loads(row.content)
            if other.get("status") in NOT_GIVEN or drug_of(other, self.protocol) is None:
                continue
            if abs(at_us - row.at_us) < gap:
                change.error("business-rule", f"MedicationAdministration/{row.rid} was given "
                             f"less than {self.protocol.min_interval_hours} hours from this "
                             "dose (protocol minimum interval)", f"{MA}.effective")
            if at_us - week < row.at_us <= at_us:
                earlier += 1
        limit = self.protocol.warn_sessions_per_7_days
        if earlier + 1 > limit:
            change.warning("business-rule", f"this is dose {earlier + 1} in 7 days; the "
                           f"protocol expects at most {limit}", f"{MA}.effective")

    def _links(self, session: Session, change: Change, dose: Dose) -> None:
        if dose.encounter_id is not None:
            encounter = _load(session, "Encounter", dose.encounter_id)
            if encounter is None:
                change.error("not-found", f"Encounter/{dose.encounter_id} does not exist",
                             f"{MA}.context")
            elif local_id(encounter.get("subject"), "Patient") != dose.patient_id:
                change.error("business-rule", f"Encounter/{dose.encounter_id} is another "
                             "patient's session", f"{MA}.context")
            elif encounter.get("status") in _ENCOUNTER_CLOSED:
                change.error("business-rule", f"Encounter/{dose.encounter_id} is "
                             f"{encounter.get('status')}: a dose needs a session under way",
                             f"{MA}.context")
        if dose.request_id is not None:
            self._order(session, change, dose)

    def _order(self, session: Session, change: Change, dose: Dose) -> None:
        assert dose.request_id is not None
        order = _load(session, "MedicationRequest", dose.request_id)
        where = f"{MA}.request"
        if order is None:
            change.error("not-found", f"MedicationRequest/{dose.request_id} does not exist",
                         where)
            return
        if local_id(order.get("subject"), "Patient") != dose.patient_id:
            change.error("business-rule", f"MedicationRequest/{dose.request_id} is another "
                         "patient's order", where)
        if order.get("status") not in _ORDER_USABLE:
            change.error("business-rule", f"MedicationRequest/{dose.request_id} is "
                         f"{order.get('status')}, not active", where)
        if dose.drug is not None and drug_of(order, self.protocol) != dose.drug:
            change.error("business-rule", f"MedicationRequest/{dose.request_id} does not order "
                         f"{dose.drug.display}", where)
        routes = order_routes(order)
        if dose.route is not None and routes and dose.route.snomed not in routes:
            change.error("business-rule", f"MedicationRequest/{dose.request_id} does not order "
                         f"the {dose.route.display.lower()}", f"{MA}.dosage.route")
        ordered = ordered_mg(order)
        if ordered is not None and dose.mg is not None and dose.mg > ordered:
            change.error("business-rule", f"{dose.mg} mg is more than the {ordered} mg ordered "
                         f"in MedicationRequest/{dose.request_id}", f"{MA}.dosage.dose")

    def _ledger(self, session: Session, ctx: RequestContext, change: Change, dose: Dose,
                at_us: int) -> DrawRequest | None:
        if dose.lot is None or dose.mg is None or dose.patient_id is None:
            return None
        encounter = _load(session, "Encounter", dose.encounter_id) if dose.encounter_id \
            else None
        places = (encounter or {}).get("location") or []
        first = places[0].get("location") if places and isinstance(places[0], dict) else None
        named = first.get("reference") if isinstance(first, dict) else None
        location = draw_location(session, named if isinstance(named, str) else None)
        if location is None:
            change.error("business-rule", "no controlled-substance location to draw from: the "
                         "session Encounter names none and more (or fewer) than one is "
                         "registered", f"{MA}.context")
            return None
        request = DrawRequest(
            location_id=location, lot_number=dose.lot, mg=dose.mg, ml=None,
            administration=f"MedicationAdministration/{change.rid}",
            patient=f"Patient/{dose.patient_id}", performer=ctx.actor.id,
            performer_display=ctx.actor.display or ctx.actor.id, occurred_us=at_us)
        for text in draw_problems(session, request):
            change.error("business-rule", f"ledger: {text}", f"{MA}.medicationReference")
        return request


def ordered_mg(order: dict[str, Any]) -> Decimal | None:
    """The largest dose in mg the order states (None: it states none in mg)."""
    found: list[Decimal] = []
    for instruction in order.get("dosageInstruction") or []:
        for rate in (instruction or {}).get("doseAndRate") or []:
            quantity = (rate or {}).get("doseQuantity") or {}
            if quantity.get("system") == UCUM and quantity.get("code") == "mg":
                try:
                    found.append(Decimal(str(quantity.get("value"))))
                except ArithmeticError:
                    continue
    return max(found) if found else None


def order_routes(order: dict[str, Any]) -> list[str]:
    """SNOMED CT route codes the order's dosage instructions name."""
    return [str(c.get("code")) for instruction in order.get("dosageInstruction") or []
            if isinstance(instruction, dict)
            for c in (instruction.get("route") or {}).get("coding") or []
            if isinstance(c, dict) and c.get("system") == SNOMED]


def _load(session: Session, rtype: str, rid: str) -> dict[str, Any] | None:
    content = repository.current_content(session, rtype, rid)
    loaded = json.loads(content) if content else None
    return loaded if isinstance(loaded, dict) else None

