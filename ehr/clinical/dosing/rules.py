"""Write rules for orders (MedicationRequest) and doses (MedicationAdministration).

Registered on the one write path, so they hold for REST create, update and conditional
update, transaction and batch entries and ``ehr load`` alike.

Amendments (governance choice, the safer design): once a ketamine dose is stored, what defines
it (patient, drug, lot, dose, route, rate, time, session, order, weight used, mg/kg, override)
never changes. A wrong dose is marked ``entered-in-error`` and a new administration is charted,
which passes every gate again and draws from the ledger again; the first draw stays in the
ledger, where the drawn drug's fate is recorded (waste or a compensating entry). Status,
period end (an infusion that finished), notes and performers may still be updated. A dose
record is never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from ehr.auth.keys import load_or_create_server_key
from ehr.auth.reauth import SigningAssertions
from ehr.auth.users import Users
from ehr.clinical.dosing.administration import (
    DOSE_PER_WEIGHT_URL,
    NOT_GIVEN,
    OVERRIDE_URL,
    drug_of,
    gated,
    read_dose,
)
from ehr.clinical.dosing.gates import Gatekeeper, order_routes, ordered_mg
from ehr.clinical.dosing.override import AssertionVerifier
from ehr.clinical.dosing.protocol import DosingProtocol, load_protocol
from ehr.clinical.ledger.draws import DrawRequest, record_draw
from ehr.config import Settings
from ehr.context import RequestContext
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource

MA = "MedicationAdministration"
MR = "MedicationRequest"
ORDERING_ROLE = "physician"
# What defines a stored dose; an update must leave all of it as it was.
_FROZEN = ("subject", "medicationCodeableConcept", "medicationReference", "contained",
           "dosage", "effectiveDateTime", "context", "request", "supportingInformation")
_FROZEN_EXTENSIONS = (DOSE_PER_WEIGHT_URL, OVERRIDE_URL)


class DosingRules:
    def __init__(self, protocol: DosingProtocol, verifier: AssertionVerifier,
                 now: Callable[[], int]) -> None:
        self.protocol = protocol
        self.gates = Gatekeeper(protocol, verifier)
        self.now = now

    # -- MedicationAdministration -------------------------------------------------------------

    def administration(self, session: Session, ctx: RequestContext, change: Change) -> None:
        prior = _live(change.prior)
        if change.resource is None:
            if gated(prior, self.protocol):
                change.error("business-rule", "a ketamine administration is never deleted: "
                             "mark it entered-in-error")
            return
        if prior is not None and (gated(prior, self.protocol)
                                  or gated(change.resource, self.protocol)):
            self._amend(change, prior, change.resource)
            return
        if not gated(change.resource, self.protocol):
            return
        dose = read_dose(change.resource, self.protocol)
        if dose.status in NOT_GIVEN:
            return
        draw = self.gates.check(session, ctx, change, dose, self.now())
        if draw is not None:
            change.after_store.append(_drawer(ctx, draw))

    def _amend(self, change: Change, prior: dict[str, Any], new: dict[str, Any]) -> None:
        if not gated(prior, self.protocol):
            change.error("business-rule", "a ketamine dose must be charted as a new "
                         "administration, not by changing another medication's record")
            return
        if prior.get("status") == "entered-in-error":
            change.error("business-rule", "an administration marked entered-in-error is final")
            return
        changed = [k for k in _FROZEN if prior.get(k) != new.get(k)]
        if _start(prior) != _start(new):
            changed.append("effectivePeriod.start")
        if _frozen_extensions(prior) != _frozen_extensions(new):
            changed.append("extension")
        if changed:
            change.error("business-rule", "what defines a stored dose cannot change ("
                         f"{', '.join(changed)}): mark this administration entered-in-error "
                         "and chart a new one", *(f"{MA}.{k}" for k in changed))
        was_given = prior.get("status") not in NOT_GIVEN
        if was_given and new.get("status") == "not-done":
            change.error("business-rule", "a dose that was given cannot become not-done: mark "
                         "it entered-in-error", f"{MA}.status")
        if not was_given and new.get("status") not in NOT_GIVEN:
            change.error("business-rule", "a dose not given cannot be turned into a given one: "
                         "chart a new administration", f"{MA}.status")
        if was_given and new.get("status") == "entered-in-error" and not change.refused:
            change.warning("informational", "the ledger keeps this dose's draw: record what "
                           "became of the drawn drug (waste or correction) in the ledger")

    # -- MedicationRequest --------------------------------------------------------------------

    def request(self, session: Session, ctx: RequestContext, change: Change) -> None:
        order = change.resource
        if order is None:
            return
        if ctx.actor.kind == "user" and ORDERING_ROLE not in ctx.actor.roles:
            change.error("forbidden", "only a physician may order medication")
        drug = drug_of(order, self.protocol)
        if drug is None:
            return
        ordered = ordered_mg(order)
        for index, instruction in enumerate(order.get("dosageInstruction") or []):
            route = next((r for c in order_routes({"dosageInstruction": [instruction]})
                          if (r := self.protocol.route_by_snomed(c)) is not None), None)
            where = f"{MR}.dosageInstruction[{index}]"
            if route is None:
                change.error("required", "a ketamine order needs a route of the protocol "
                             "(SNOMED CT)", f"{where}.route")
                continue
            if drug.key not in route.drugs:
                change.error("business-rule", f"{drug.display} is not given by the "
                             f"{route.display.lower()} in this protocol", f"{where}.route")
            if ordered is not None and route.max_mg is not None and ordered > route.max_mg:
                change.error("business-rule", f"{ordered} mg is above the protocol maximum of "
                             f"{route.max_mg} mg per session by the {route.display.lower()}",
                             f"{where}.doseAndRate")


def _drawer(ctx: RequestContext, draw: DrawRequest) -> Callable[[Session, StoredResource], None]:
    def after_store(session: Session, stored: StoredResource) -> None:
        record_draw(session, ctx, draw)
    return after_store


def _live(prior: StoredResource | None) -> dict[str, Any] | None:
    if prior is None or prior.deleted or not prior.content:
        return None
    loaded = json.loads(prior.content)
    return loaded if isinstance(loaded, dict) else None


def _start(resource: dict[str, Any]) -> Any:
    period = resource.get("effectivePeriod")
    return period.get("start") if isinstance(period, dict) else None


def _frozen_extensions(resource: dict[str, Any]) -> list[Any]:
    return [e for e in resource.get("extension") or []
            if isinstance(e, dict) and e.get("url") in _FROZEN_EXTENSIONS]


def signing_verifier(settings: Settings) -> SigningAssertions:
    """Checks the re-authentication behind overrides with the server's own key."""
    return SigningAssertions(load_or_create_server_key(settings), Users())


def register_dosing_rules(registry: RuleRegistry, settings: Settings,
                          now: Callable[[], int]) -> DosingRules:
    rules = DosingRules(load_protocol(settings.dosing_protocol_file), signing_verifier(settings),
                        now)
    registry.register(MA, rules.administration)
    registry.register(MR, rules.request)
    return rules
