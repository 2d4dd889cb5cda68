"""``/api/ledger``: locations, entries, witnesses, counts, tasks, corrections, and their errors."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from ledger_clinic import DEA, LOCATION, LedgerClinic, ledger_fixture  # noqa: F401
from sqlalchemy import Engine

from ehr.audit import repository as audit
from ehr.audit.repository import AuditFilter, SortKey, Term
from ehr.db import unit_of_work


def _issues(response: Any) -> str:
    body = response.json()
    assert set(body) >= {"detail", "issues"}, body
    return " | ".join(i["diagnostics"] for i in body["issues"])


def test_openapi_documents_every_endpoint_with_errors(ledger: LedgerClinic) -> None:
    schema = ledger.http.get("/openapi.json").json()
    paths = {p for p in schema["paths"] if p.startswith("/api/ledger")}
    assert {"/api/ledger/locations", "/api/ledger/receipts", "/api/ledger/waste",
            "/api/ledger/destructions", "/api/ledger/losses", "/api/ledger/counts",
            "/api/ledger/tasks", "/api/ledger/tasks/{task_id}/close",
            "/api/ledger/entries/{entry_id}/corrections", "/api/ledger/reports/dispensing",
            "/api/ledger/reports/balances", "/api/ledger/reports/inventory",
            "/api/ledger/reports/discrepancies"} <= paths
    waste = schema["paths"]["/api/ledger/waste"]["post"]
    assert {"201", "400", "403", "422"} <= set(waste["responses"])
    assert "ErrorOut" in json.dumps(waste["responses"]["422"])


def test_locations(ledger: LedgerClinic) -> None:
    bad = ledger.post("/locations", {"location_id": LOCATION, "dea_number": "BP1234567"},
                      who="root")
    assert bad.status_code == 400 and "check digit" in _issues(bad)
    assert ledger.post("/locations", {"location_id": "nowhere", "dea_number": DEA},
                       who="root").status_code == 422
    assert ledger.post("/locations", {"location_id": LOCATION, "dea_number": DEA},
                       who="nina").status_code == 403
    ledger.register()
    again = ledger.post("/locations", {"location_id": LOCATION, "dea_number": DEA},
                        who="cora")
    assert again.status_code == 409
    listed = ledger.get("/locations", who="nina")
    assert listed.status_code == 200
    assert listed.json() == [{**listed.json()[0], "location_id": LOCATION, "dea_number": DEA,
                              "name": "Main clinic",
                              "address": "1 Clinic Way, Springfield, IL"}]
    assert ledger.get("/locations", who="tara").status_code == 403
    assert ledger.http.get("/api/ledger/locations").status_code == 403  # a system client
    assert ledger.http.get("/api/ledger/locations",
                           headers={"Authorization": "Bearer nonsense"}).status_code == 401
    changed = ledger.http.put(f"/api/ledger/locations/{LOCATION}",
                              json={"dea_number": "AB1234563"}, headers=ledger.as_("cora"))
    assert changed.status_code == 200 and changed.json()["dea_number"] == "AB1234563"
    assert ledger.http.put("/api/ledger/locations/other", json={"name": "x"},
                           headers=ledger.as_("cora")).status_code == 404


def test_receipts(ledger: LedgerClinic) -> None:
    ledger.register()
    entry = ledger.receive("L1", containers=2)  # 2 x 10 mL x 50 mg/mL
    assert (entry["kind"], entry["mg"], entry["ml"], entry["balance_mg"]) == \
        ("receipt", "1000.0000", "20.0000", "1000.0000")
    assert entry["detail"]["supplier_dea"] == "AB1234563"
    assert entry["detail"]["invoice_number"] == "INV-77"
    assert ledger.post("/receipts", ledger.receipt(ndc="12-34")).status_code == 400
    assert ledger.post("/receipts", ledger.receipt(strength="lots")).status_code == 400
    assert ledger.post("/receipts", ledger.receipt(location_id="x")).status_code == 404
    past = ledger.receipt("L2", expiry="2020-01-01")
    assert ledger.post("/receipts", past).status_code == 422
    other = ledger.post("/receipts", ledger.receipt("L1", strength="100 mg/mL"))
    assert other.status_code == 422 and "concentration" in _issues(other)
    assert ledger.post("/receipts", ledger.receipt("L3"), who="cora").status_code == 403
    missing = {k: v for k, v in ledger.receipt("L4").items() if k != "invoice_number"}
    assert ledger.post("/receipts", missing).status_code == 400
    lots = ledger.get(f"/locations/{LOCATION}/lots", who="nina").json()
    assert [(x["lot_number"], x["balance_mg"], x["balance_ml"]) for x in lots] == \
        [("L1", "1000.0000", "20.0000")]


def _waste(witness: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    body = {"location_id": LOCATION, "lot_number": "L1", "drawn_mg": "50",
            "given_mg": "35", "wasted_mg": "15", "witness": witness}
    return {**body, **extra}


def test_waste_needs_a_second_reauthenticated_person(ledger: LedgerClinic) -> None:
    ledger.register()
    ledger.receive("L1", containers=1)
    ok = ledger.post("/waste", _waste(ledger.witness("doc")))
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["witnesses"] == [{"id": "doc", "display": "Doc (physician)"}]
    assert (body["mg"], body["detail"]["drawn_ml"], body["detail"]["wasted_ml"]) == \
        ("-15.0000", "1.0000", "0.3000")
    self_witness = ledger.post("/waste", _waste(ledger.witness("nina")))
    assert self_witness.status_code == 422 and "second, different" in _issues(self_witness)
    forged = ledger.post("/waste", _waste({"username": "doc", "assertion": "x.y.z"}))
    assert forged.status_code == 403
    used = ledger.witness("doc")
    assert ledger.post("/waste", _waste(used)).status_code == 201
    replay = ledger.post("/waste", _waste(used))
    assert replay.status_code == 403 and "already used" in _issues(replay)
    someone_elses = {"username": "doc2", "assertion": ledger.reauth("doc")}
    assert ledger.post("/waste", _waste(someone_elses)).status_code == 403
    wrong_action = {"username": "doc", "assertion": ledger.reauth("doc", "note-signing")}
    assert ledger.post("/waste", _waste(wrong_action)).status_code == 403
    therapist = ledger.post("/waste", _waste(ledger.witness("tara")))
    assert therapist.status_code == 422 and "role" in _issues(therapist)
    sums = ledger.post("/waste", _waste(ledger.witness("doc"), given_mg="30"))
    assert sums.status_code == 422 and "must equal" in _issues(sums)
    assert ledger.post("/waste", _waste(None)).status_code == 400
    assert ledger.post("/waste", _waste(ledger.witness("nina")), who="doc").status_code == 201
    assert ledger.post("/waste", _waste(ledger.witness("doc")), who="cora").status_code == 403
    lots = ledger.get(f"/locations/{LOCATION}/lots", who="nina").json()
    assert lots[0]["balance_mg"] == "455.0000"  # 500 - 3 x 15


def test_destruction_form_41_with_two_witnesses(ledger: LedgerClinic) -> None:
    ledger.register()
    ledger.receive("L1", containers=1)
    body = {"location_id": LOCATION, "lot_number": "L1", "ml": "4", "containers": 1,
            "method": "reverse distributor incineration", "reason": "expired"}
    one = ledger.post("/destructions", {**body, "witnesses": [ledger.witness("doc")]},
                      who="cora")
    assert one.status_code == 400
    same = ledger.post("/destructions", {**body, "witnesses": [ledger.witness("doc"),
                                                               ledger.witness("doc")]},
                       who="cora")
    assert same.status_code == 422 and "different people" in _issues(same)
    done = ledger.post("/destructions", {**body, "witnesses": [ledger.witness("doc"),
                                                               ledger.witness("nina")]},
                       who="cora")
    assert done.status_code == 201, done.text
    entry = done.json()
    assert entry["mg"] == "-200.0000" and len(entry["witnesses"]) == 2
    assert entry["detail"]["form"] == "DEA Form 41"
    assert entry["detail"]["place"] == "Main clinic, 1 Clinic Way, Springfield, IL"
    too_much = ledger.post("/destructions", {**body, "ml": "7", "witnesses": [
        ledger.witness("doc"), ledger.witness("nina")]}, who="cora")
    assert too_much.status_code == 422


def test_theft_opens_deadline_tasks_that_close_with_a_reference(ledger: LedgerClinic) -> None:
    ledger.register()
    ledger.receive("L1", containers=1)
    discovered = dt.datetime(2026, 3, 6, 15, 0, tzinfo=dt.UTC)  # a Friday
    reported = ledger.post("/losses", {"location_id": LOCATION, "lot_number": "L1",
                                       "mg": "100", "kind": "theft",
                                       "discovered": discovered.isoformat(),
                                       "circumstances": "two vials missing from the safe"})
    assert reported.status_code == 201, reported.text
    tasks = {t["kind"]: t for t in reported.json()["tasks"]}
    assert tasks["dea-notice"]["due"].startswith("2026-03-09T23:59:59")  # Monday
    assert tasks["form-106"]["due"].startswith("2026-04-20T23:59:59")
    assert reported.json()["entry"]["balance_mg"] == "400.0000"
    overdue = ledger.get("/tasks?status=overdue", who="doc").json()
    assert {t["kind"] for t in overdue} == {"dea-notice", "form-106"}
    assert all(t["status"] == "overdue" for t in overdue)
    first = tasks["dea-notice"]["id"]
    closed = ledger.post(f"/tasks/{first}/close", {"reference": "DEA-TX-0042"}, who="cora")
    assert closed.status_code == 200 and closed.json()["status"] == "completed"
    assert closed.json()["closure"]["reference"] == "DEA-TX-0042"
    assert ledger.post(f"/tasks/{first}/close", {"reference": "again"},
                       who="cora").status_code == 409
    assert ledger.post("/tasks/9999/close", {"reference": "x"}, who="cora").status_code == 404
    assert [t["kind"] for t in ledger.get("/tasks").json()] == ["form-106"]
    assert len(ledger.get("/tasks?status=all").json()) == 2
    assert ledger.get("/tasks", who="nina").status_code == 403
    future = ledger.post("/losses", {"location_id": LOCATION, "lot_number": "L1", "mg": "1",
                                     "discovered": "2999-01-01T00:00:00Z",
                                     "circumstances": "?"})
    assert future.status_code == 422


def _count(ledger: LedgerClinic, mg: str, who: str = "nina") -> Any:
    return ledger.post("/counts", {"location_id": LOCATION, "kind": "biennial",
                                   "timing": "close", "lines": [
                                       {"lot_number": "L1", "mg": mg,
                                        "method": "estimated", "containers": 1}]}, who=who)


def test_a_count_variance_raises_a_flag_for_compliance(ledger: LedgerClinic) -> None:
    ledger.register()
    ledger.receive("L1", containers=1)
    balanced = _count(ledger, "500")
    assert balanced.status_code == 201, balanced.text
    assert (balanced.json()["variance"], balanced.json()["flag"]) == (False, None)
    short = _count(ledger, "487.5", who="cora")
    assert short.status_code == 201
    body = short.json()
    assert body["variance"] is True
    assert body["lines"][0]["variance_mg"] == "-12.5000"
    assert body["lines"][0]["variance_ml"] == "-0.2500"
    flag = ledger.http.get(f"/fhir/{body['flag']}").json()
    assert flag["status"] == "active"
    assert flag["subject"] == {"reference": f"Location/{LOCATION}"}
    category = flag["category"][0]["coding"][0]
    assert (category["system"], category["code"]) == (
        "http://terminology.hl7.org/CodeSystem/flag-category", "admin")
    assert flag["code"]["coding"][0]["code"] == "ledger-variance"
    assert "variance -12.5000 mg" in flag["code"]["text"]
    unknown = ledger.post("/counts", {"location_id": LOCATION, "kind": "ad-hoc",
                                      "timing": "opening",
                                      "lines": [{"lot_number": "NOPE", "mg": "1"}]})
    assert unknown.status_code == 404
    assert ledger.post("/counts", {"location_id": LOCATION, "kind": "weekly",
                                   "timing": "opening"}).status_code == 400
    assert _count(ledger, "1", who="tara").status_code == 403


def test_corrections_are_compensating_entries(ledger: LedgerClinic) -> None:
    ledger.register()
    wrong = ledger.receive("L1", containers=1)
    assert ledger.post(f"/entries/{wrong['id']}/corrections", {"reason": "typo"},
                       who="nina").status_code == 403
    fixed = ledger.post(f"/entries/{wrong['id']}/corrections",
                        {"reason": "received at the other clinic"}, who="doc")
    assert fixed.status_code == 201, fixed.text
    assert (fixed.json()["kind"], fixed.json()["mg"], fixed.json()["corrects"],
            fixed.json()["balance_mg"]) == ("correction", "-500.0000", wrong["id"],
                                            "0.0000")
    assert ledger.post(f"/entries/{wrong['id']}/corrections", {"reason": "again"},
                       who="doc").status_code == 409
    assert ledger.post(f"/entries/{fixed.json()['id']}/corrections", {"reason": "undo"},
                       who="doc").status_code == 409
    assert ledger.post("/entries/999/corrections", {"reason": "x"},
                       who="doc").status_code == 404
    assert ledger.post(f"/entries/{wrong['id']}/corrections", {"reason": ""},
                       who="doc").status_code == 400
    # The original stays readable, unchanged.
    original = ledger.get(f"/entries/{wrong['id']}").json()
    assert (original["mg"], original["kind"]) == ("500.0000", "receipt")
    # A receipt whose stock was used cannot be reversed below zero.
    used = ledger.receive("L2", containers=1)
    ledger.post("/losses", {"location_id": LOCATION, "lot_number": "L2", "mg": "10",
                            "discovered": "2026-01-05T10:00:00Z", "circumstances": "spill"})
    refused = ledger.post(f"/entries/{used['id']}/corrections", {"reason": "x"}, who="cora")
    assert refused.status_code == 422


def test_every_read_and_write_is_audited(ledger: LedgerClinic, engine: Engine) -> None:
    ledger.register()
    ledger.receive("L1")
    ledger.get("/locations", who="nina")
    ledger.post("/receipts", ledger.receipt("L9"), who="tara")
    ledger.app.state.pipeline.recorder.seal_now(engine)  # PostgreSQL chains in the background
    with unit_of_work(engine, write=False) as session:
        rows = list(audit.stream(session, AuditFilter(
            ((Term("interaction", "operation:ledger-receipt"),),)), [SortKey("seq")]))
        reads = audit.count(session, AuditFilter(
            ((Term("interaction", "operation:ledger-location-read"),),)))
    outcomes = sorted((r.actor_id, r.status, r.rtype, r.rid) for r in rows)
    assert outcomes == [("nina", 200, "Location", LOCATION), ("tara", 403, None, None)]
    assert reads == 1
    detail = json.loads(next(r for r in rows if r.status == 200).body)["detail"]
    assert (detail["kind"], Decimal(detail["mg"])) == ("receipt", Decimal(1000))
