"""``/api/ledger/reports/*``: dispensing log, running balances, inventory, discrepancies."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

from ledger_clinic import LOCATION, LedgerClinic, ledger_fixture  # noqa: F401
from sqlalchemy import Engine

from ehr.audit import repository as audit
from ehr.audit.repository import AuditFilter, SortKey, Term
from ehr.clinical.ledger.draws import DrawRequest, draw_problems, record_draw
from ehr.clinical.ledger.reports import DISPENSING_FIELDS, INVENTORY_FIELDS
from ehr.context import Actor, RequestContext
from ehr.db import unit_of_work
from ehr.instants import now_us


def _dose(engine: Engine, patient: str, mg: str, n: int) -> None:
    """What charting a MedicationAdministration does (the dosing gate's calls)."""
    request = DrawRequest(LOCATION, "L1", Decimal(mg), None, f"MedicationAdministration/ma{n}",
                          f"Patient/{patient}", "nina", "Nina Park RN", now_us())
    ctx = RequestContext(actor=Actor(id="nina", kind="user", roles=frozenset({"nurse"})))
    with unit_of_work(engine) as session:
        assert draw_problems(session, request) == []
        record_draw(session, ctx, request)


def _stocked(ledger: LedgerClinic, engine: Engine) -> str:
    ledger.register()
    ledger.receive("L1", containers=1)
    patient = ledger.patient()
    _dose(engine, patient, "35", 1)
    waste = ledger.post("/waste", {"location_id": LOCATION, "lot_number": "L1",
                                   "drawn_mg": "50", "given_mg": "35", "wasted_mg": "15",
                                   "administration": "MedicationAdministration/ma1",
                                   "witness": ledger.witness("doc")})
    assert waste.status_code == 201, waste.text
    assert waste.json()["patient"] == f"Patient/{patient}"
    return patient


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_dispensing_log_names_patient_and_administering_person(
        ledger: LedgerClinic, engine: Engine) -> None:
    patient = _stocked(ledger, engine)
    response = ledger.get("/reports/dispensing?format=json", who="doc")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fields"] == list(DISPENSING_FIELDS)
    given, wasted = body["rows"]
    assert (given["kind"], given["mg"], given["ml"]) == ("administration", "-35.0000",
                                                         "-0.7000")
    assert given["patient_name"] == "Ana Rivera"
    assert given["patient_address"] == "9 Elm St, Springfield, IL"
    assert given["administered_by"] == "Nina Park RN"
    assert given["dea_number"] == "BP1234563"
    assert (wasted["kind"], wasted["drawn_mg"], wasted["wasted_mg"], wasted["witness"]) == \
        ("waste", "50.0000", "15.0000", "Doc (physician)")
    rows = _csv(ledger.get("/reports/dispensing", who="cora", accept="text/csv"))
    assert [r["kind"] for r in rows] == ["administration", "waste"]
    assert rows[0]["patient"] == f"Patient/{patient}" and rows[0]["mg"] == "-35.0000"
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert ledger.get(f"/reports/dispensing?from={tomorrow}").json()["rows"] == []
    today = dt.date.today().isoformat()
    assert len(ledger.get(f"/reports/dispensing?from={today}&to={today}"
                          f"&location={LOCATION}").json()["rows"]) == 2
    assert ledger.get("/reports/dispensing?location=nowhere").status_code == 404
    assert ledger.get("/reports/dispensing?from=yesterday").status_code == 400
    assert ledger.get("/reports/dispensing?format=xml").status_code == 400
    assert ledger.get("/reports/dispensing", who="nina").status_code == 403
    # The report's audit record names the patient it disclosed.
    ledger.app.state.pipeline.recorder.seal_now(engine)
    with unit_of_work(engine, write=False) as session:
        records = list(audit.stream(session, AuditFilter(
            ((Term("interaction", "operation:ledger-report"),), (Term("patient", patient),))),
            [SortKey("seq")]))
    assert len(records) >= 3
    assert json.loads(records[0].body)["detail"]["report"] == "dispensing"


def test_running_balances_and_inventory(ledger: LedgerClinic, engine: Engine) -> None:
    _stocked(ledger, engine)
    rows = _csv(ledger.get("/reports/balances?format=csv&lot=L1"))
    assert [(r["kind"], r["mg"], r["balance_mg"]) for r in rows] == [
        ("receipt", "500.0000", "500.0000"), ("administration", "-35.0000", "465.0000"),
        ("waste", "-15.0000", "450.0000")]
    assert ledger.get("/reports/balances?lot=NOPE").status_code == 404
    inventory = ledger.get("/reports/inventory").json()
    assert inventory["fields"] == list(INVENTORY_FIELDS)
    (lot,) = inventory["rows"]
    assert (lot["balance_mg"], lot["balance_ml"], lot["received_mg"], lot["administered_mg"],
            lot["wasted_mg"], lot["lost_mg"], lot["expired"]) == (
        "450.0000", "9.0000", "500.0000", "35.0000", "15.0000", "0.0000", False)


def test_discrepancies_report(ledger: LedgerClinic, engine: Engine) -> None:
    _stocked(ledger, engine)
    counted = ledger.post("/counts", {"location_id": LOCATION, "kind": "ad-hoc",
                                      "timing": "opening",
                                      "lines": [{"lot_number": "L1", "ml": "8.5"}]})
    assert counted.status_code == 201, counted.text
    rows = _csv(ledger.get("/reports/discrepancies?format=csv"))
    assert [(r["lot_number"], r["counted_mg"], r["expected_mg"], r["variance_mg"], r["flag"])
            for r in rows] == [("L1", "425.0000", "450.0000", "-25.0000",
                                counted.json()["flag"])]
    # CSV cells are not formulas, but negative quantities stay numbers.
    assert rows[0]["variance_ml"] == "-0.5000"
