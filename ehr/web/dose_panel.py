"""The dose panel of the session page: the patient's active orders, the lots on hand, the latest
body weight, the calculator's plan and the pre-dose checklist, which is the dosing gates' own
dry run of the dose the plan proposes (``ehr.clinical.dosing.dry_run``), rolled back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ehr.clinical.dosing.dry_run import dry_run
from ehr.clinical.dosing.protocol import DosingProtocol
from ehr.clinical.dosing.vitals import Weight, weight_of
from ehr.clinical.ledger.operations import LedgerOperations
from ehr.db import unit_of_work
from ehr.web.pages import Page
from ehr.web.session_dose import Plan, administration, orders_of, plan_from, session_lots

WEIGHT_LOINC = "http://loinc.org|29463-7"


def dose_context(page: Page, dosing: DosingProtocol, ledger: LedgerOperations,
                 encounter: dict[str, Any], pid: str, values: dict[str, str],
                 start: str) -> dict[str, Any]:
    """Orders, lots, weight, the calculator's plan and the gates' dry run of it (a dose
    started at ``start``)."""
    pages = page.pages
    requests = page.fhir.search("MedicationRequest", [("patient", pid), ("status", "active")])
    orders = orders_of(requests.entries(), dosing)
    lots = ledger.run(page.ctx, "lot-read",
                      session_lots(encounter, dt.datetime.now(pages.templates.zone).date()))
    weights = page.fhir.search("Observation", [("patient", pid), ("code", WEIGHT_LOINC),
                                               ("_sort", "-date"), ("_count", "1")])
    weight_id = next((str(w.get("id")) for w in weights.entries()
                      if w.get("resourceType") == "Observation"), None)
    clock = pages.pipeline.clock()

    def evaluate() -> tuple[Weight | None, str | None, Plan, list[dict[str, Any]]]:
        with unit_of_work(pages.engine, write=False) as session:
            weight, problem = weight_of(session, weight_id, pid, dosing) \
                if weight_id else (None, "no body weight recorded")
            plan = plan_from(values, orders, lots, weight_id, weight)
            proposed = administration(
                plan, dosing, patient=f"Patient/{pid}",
                encounter=f"Encounter/{encounter.get('id')}",
                performer=page.ctx.actor.practitioner, start=start)
            issues = [i.to_fhir() for i in dry_run(session, page.ctx, dosing, proposed, clock)
                      if i.code != "forbidden"]
            session.rollback()
        return weight, problem, plan, issues

    weight, weight_problem, plan, issues = evaluate()
    if not plan.entered:
        # Nothing typed yet: the maximum was probed with the usual low, not a real dose.
        issues = [i for i in issues if not i.get("expression")
                  or "dosage.dose" not in " ".join(i["expression"])]
    return {"orders": orders, "lots": lots, "weight": weight, "weight_id": weight_id,
            "weight_problem": weight_problem, "plan": plan, "checklist": issues,
            "weight_age_days": None if weight is None else
            round((clock - weight.at_us) / 86_400_000_000, 1)}
