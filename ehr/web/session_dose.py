"""Dose charting on the session page: the calculator and the MedicationAdministration it posts.

The calculator turns mg/kg and the weight used into mg, and mg into mL by the selected lot's
concentration (from the ledger). The administration is built exactly as the dosing feature
expects (docs/dosing.md): a contained Medication with the lot, the dose in UCUM mg, the SNOMED
CT route of the order, the weight used and the mg/kg actually given, the session, performer and
order; an infusion carries its rate and period. The server recomputes and checks all of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session

from ehr.clinical.dosing.administration import DOSE_PER_WEIGHT_URL, OVERRIDE_URL, drug_of
from ehr.clinical.dosing.gates import order_routes, ordered_mg
from ehr.clinical.dosing.protocol import DosingProtocol, Drug, Route
from ehr.clinical.dosing.vitals import Weight
from ehr.clinical.ledger import repository as ledger
from ehr.clinical.ledger.draws import draw_location
from ehr.clinical.ledger.operations import Done
from ehr.clinical.terminology import NDC, RXNORM, SNOMED, UCUM
from ehr.context import RequestContext

MG = Decimal("0.1")
ML = Decimal("0.01")
PER_KG = Decimal("0.001")


@dataclass(frozen=True)
class LotOption:
    lot_number: str
    drug: str
    ndc: str | None
    strength: str
    concentration: Decimal  # mg per mL
    expiry: dt.date
    balance_mg: Decimal
    expired: bool


@dataclass(frozen=True)
class Order:
    id: str
    drug: Drug
    route: Route
    ordered_mg: Decimal | None
    medication: dict[str, Any]  # the order's medicationCodeableConcept


@dataclass
class Plan:
    """What the calculator shows and the charting form posts."""

    order: Order | None = None
    lot: LotOption | None = None
    weight_id: str | None = None
    weight: Weight | None = None
    per_kg: Decimal | None = None
    mg: Decimal | None = None
    infusion_minutes: int | None = None
    entered: bool = False  # False: no dose typed yet (the checklist probes with the usual low)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ml(self) -> Decimal | None:
        if self.mg is None or self.lot is None or not self.lot.concentration:
            return None
        return (self.mg / self.lot.concentration).quantize(ML, ROUND_HALF_UP)

    @property
    def stated_per_kg(self) -> Decimal | None:
        if self.mg is None or self.weight is None:
            return None
        return (self.mg / self.weight.kg).quantize(PER_KG, ROUND_HALF_UP)

    @property
    def maximum_mg(self) -> Decimal | None:
        """The protocol maximum for this route and weight, in mg (the lower of both limits)."""
        if self.order is None:
            return None
        route = self.order.route
        limits = [route.max_mg] if route.max_mg is not None else []
        if route.weight_based and route.max_mg_per_kg is not None and self.weight is not None:
            limits.append((route.max_mg_per_kg * self.weight.kg).quantize(MG, ROUND_HALF_UP))
        return min(limits) if limits else None

    @property
    def rate_mg_per_hour(self) -> Decimal | None:
        if self.mg is None or not self.infusion_minutes:
            return None
        return (self.mg * 60 / self.infusion_minutes).quantize(PER_KG, ROUND_HALF_UP)


def session_lots(encounter: dict[str, Any], today: dt.date) -> Any:
    """Ledger work: the lots at the session's location (where the dose is drawn)."""
    def work(session: Session, ctx: RequestContext) -> Done[list[LotOption]]:
        places = encounter.get("location") or []
        first = places[0].get("location") if places and isinstance(places[0], dict) else None
        named = first.get("reference") if isinstance(first, dict) else None
        location_id = draw_location(session, named if isinstance(named, str) else None)
        place = ledger.location(session, location_id) if location_id else None
        if place is None or place.id is None:
            return Done([])
        return Done([LotOption(lot.lot_number, lot.drug, lot.ndc, lot.strength,
                               lot.concentration, lot.expiry, bal.mg, lot.expiry < today)
                     for lot, bal in ledger.lots(session, place.id)], location_id)
    return work


def orders_of(requests: list[dict[str, Any]], protocol: DosingProtocol) -> list[Order]:
    """The active ketamine orders that name a protocol route."""
    out: list[Order] = []
    for order in requests:
        drug = drug_of(order, protocol)
        if drug is None or order.get("status") != "active":
            continue
        route = next((r for code in order_routes(order)
                      if (r := protocol.route_by_snomed(code)) is not None), None)
        medication = order.get("medicationCodeableConcept")
        if route is None or not isinstance(medication, dict):
            continue
        out.append(Order(str(order.get("id")), drug, route, ordered_mg(order), medication))
    return out


def _decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def plan_from(values: dict[str, str], orders: list[Order], lots: list[LotOption],
              weight_id: str | None, weight: Weight | None) -> Plan:
    """The calculator's plan from the form (or from defaults when nothing was typed)."""
    plan = Plan(weight_id=weight_id, weight=weight)
    plan.order = next((o for o in orders if o.id == values.get("order")),
                      orders[0] if orders else None)
    usable = [lot for lot in lots if not lot.expired]
    plan.lot = next((lot for lot in lots if lot.lot_number == values.get("lot")),
                    usable[0] if usable else None)
    if plan.order is None:
        return plan
    route = plan.order.route
    plan.infusion_minutes = route.infusion_minutes if route.infusion else None
    if route.infusion and values.get("minutes"):
        minutes = _decimal(values.get("minutes"))
        if minutes is None or minutes <= 0 or minutes != minutes.to_integral_value():
            plan.errors["minutes"] = "Enter the infusion time in whole minutes."
        else:
            plan.infusion_minutes = int(minutes)
    per_kg, mg = values.get("per_kg", ""), values.get("mg", "")
    plan.entered = bool(per_kg.strip() or mg.strip())
    if route.weight_based and per_kg.strip():
        plan.per_kg = _decimal(per_kg)
        if plan.per_kg is None or plan.per_kg <= 0:
            plan.errors["per_kg"] = "Enter the dose in mg/kg as a positive number."
        elif weight is None:
            plan.errors["per_kg"] = "No usable weight: record the weight first."
        else:
            plan.mg = (plan.per_kg * weight.kg).quantize(MG, ROUND_HALF_UP)
    elif mg.strip():
        plan.mg = _decimal(mg)
        if plan.mg is None or plan.mg <= 0:
            plan.mg = None
            plan.errors["mg"] = "Enter the dose in mg as a positive number."
    elif not plan.entered:
        # Nothing typed: the pre-dose checklist probes with the lowest usual dose.
        low = route.usual[0] if route.usual else Decimal(1)
        if route.weight_based and weight is not None:
            plan.mg = (low * weight.kg).quantize(MG, ROUND_HALF_UP)
        elif not route.weight_based:
            plan.mg = low
        else:
            plan.mg = Decimal(1)
    return plan


def administration(plan: Plan, protocol: DosingProtocol, *, patient: str, encounter: str,
                   performer: str | None, start: str,
                   override: tuple[str, str] | None = None) -> dict[str, Any]:
    """The MedicationAdministration of ``plan`` (``override``: typed reason and assertion).

    Without an order it is still built (with what is known), so the gates' dry run can show
    everything else while the missing order is listed.
    """
    order = plan.order
    route = order.route if order is not None else None
    codings = (order.medication.get("coding") or []) if order is not None else []
    medication: dict[str, Any] = {
        "resourceType": "Medication", "id": "med",
        "code": {"coding": [c for c in codings
                            if isinstance(c, dict) and c.get("system") == RXNORM]}}
    if plan.lot is not None:
        medication["batch"] = {"lotNumber": plan.lot.lot_number,
                               "expirationDate": plan.lot.expiry.isoformat()}
        # The lot's NDC is sent only when the protocol knows it as this drug's.
        if order is not None and plan.lot.ndc \
                and protocol.drug_by_code("ndc", plan.lot.ndc) == order.drug:
            medication["code"]["coding"].append({"system": NDC, "code": plan.lot.ndc})
    dosage: dict[str, Any] = {}
    if route is not None:
        dosage["route"] = {"coding": [{"system": SNOMED, "code": route.snomed,
                                       "display": route.display}]}
    if plan.mg is not None:
        dosage["dose"] = {"value": float(plan.mg), "unit": "mg", "system": UCUM, "code": "mg"}
    infusion = route is not None and route.infusion
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "in-progress" if infusion else "completed",
        "contained": [medication], "medicationReference": {"reference": "#med"},
        "subject": {"reference": patient}, "context": {"reference": encounter},
        "dosage": dosage}
    if order is not None:
        resource["request"] = {"reference": f"MedicationRequest/{order.id}"}
    if performer:
        resource["performer"] = [{"actor": {"reference": performer}}]
    if infusion:
        resource["effectivePeriod"] = {"start": start}
        if plan.rate_mg_per_hour is not None:
            dosage["rateQuantity"] = {"value": float(plan.rate_mg_per_hour), "unit": "mg/h",
                                      "system": UCUM, "code": "mg/h"}
    else:
        resource["effectiveDateTime"] = start
    extensions: list[dict[str, Any]] = []
    if route is not None and route.weight_based and plan.weight_id:
        resource["supportingInformation"] = [{"reference": f"Observation/{plan.weight_id}"}]
        if plan.stated_per_kg is not None:
            extensions.append({"url": DOSE_PER_WEIGHT_URL, "valueQuantity": {
                "value": float(plan.stated_per_kg), "unit": "mg/kg", "system": UCUM,
                "code": "mg/kg"}})
    if override is not None:
        extensions.append({"url": OVERRIDE_URL, "extension": [
            {"url": "reason", "valueString": override[0]},
            {"url": "assertion", "valueString": override[1]}]})
    if extensions:
        resource["extension"] = extensions
    return resource
