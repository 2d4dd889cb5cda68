"""Ledger pages (issue 8 item 4): the ledger's role matrix, forms with errors next to the
field, witnessed waste, counts that raise a Flag, the Schedule III log and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from ehr_testing import sealed
from fastapi.testclient import TestClient

from ehr.audit import repository as audit_repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.clinical.ledger import entries, losses, repository
from ehr.clinical.ledger.locations import Registration, register
from ehr.clinical.ledger.protocol import load_protocol
from ehr.context import SYSTEM, Actor, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.audit_report import report_row
from ehr.fhir.writer import Writer
from ehr.instants import now_us
from ehr.store.repository import get_current
from web.signing_in import PASSWORD, csrf_of, make_user, sign_in

LOCATION = "clinic-1"
STAFF = {"doc": "physician", "doc2": "physician", "nina": "nurse", "cora": "compliance",
         "tara": "therapist", "root": "admin"}
PAGES = {"/ledger": {"physician", "nurse", "compliance"},
         "/ledger/receipts": {"physician", "nurse", "compliance"},
         "/ledger/counts": {"physician", "nurse", "compliance"},
         "/ledger/waste": {"physician", "nurse", "compliance"},
         "/ledger/destruction": {"physician", "nurse", "compliance"},
         "/ledger/losses": {"physician", "nurse", "compliance"},
         "/ledger/corrections": {"physician", "compliance"},
         "/ledger/log": {"physician", "compliance"},
         "/ledger/log.csv": {"physician", "compliance"}}


@pytest.fixture
def clinic(web_app: Any) -> Any:
    for name, role in STAFF.items():
        make_user(web_app, name, role)
    with unit_of_work(web_app.state.engine) as session:
        Writer(web_app.state.pipeline, session, RequestContext(actor=SYSTEM)).update(
            "Location", LOCATION, {"resourceType": "Location", "id": LOCATION,
                                   "name": "Main clinic",
                                   "address": {"line": ["1 Clinic Way"], "city": "Springfield"}})
        register(session, SYSTEM, Registration(LOCATION, "BP1234563"))
    return web_app


def as_user(name: str) -> RequestContext:
    return RequestContext(actor=Actor(id=name, kind="user", display=name.title(),
                                      roles=frozenset({STAFF[name]})))


def receive(app: Any, lot: str = "L1", *, received: dt.date | None = None,
            expiry: dt.date | None = None) -> None:
    today = dt.date.today()
    with unit_of_work(app.state.engine) as session:
        entries.record_receipt(session, as_user("nina"), load_protocol(), entries.Receipt(
            location_id=LOCATION, lot_number=lot, drug="Ketamine HCl", form="injection solution",
            strength="50 mg/mL", container_ml=Decimal(10), containers=2,
            expiry=expiry or today + dt.timedelta(days=365), received=received or today,
            supplier_name="Pharma Supply", supplier_address="2 Depot Rd",
            supplier_dea="AB1234563", invoice_number="INV-1", ndc="0409-2053-10"))


def balance(app: Any, lot: str = "L1") -> Decimal:
    with unit_of_work(app.state.engine) as session:
        place = repository.location(session, LOCATION)
        assert place is not None and place.id is not None
        state = repository.lock_lot(session, place.id, lot)
        assert state is not None
        return state.mg


def patient(app: Any) -> str:
    with unit_of_work(app.state.engine) as session:
        stored = Writer(app.state.pipeline, session, RequestContext(actor=SYSTEM)).create(
            "Patient", {"resourceType": "Patient",
                        "name": [{"given": ["Ana"], "family": "Rivera"}],
                        "address": [{"line": ["9 Elm St"], "city": "Springfield"}]}).stored
    assert stored is not None
    return stored.rid


def audit(app: Any) -> list[dict[str, Any]]:
    with unit_of_work(sealed(app.state.engine, app)) as session:
        return [report_row(r) for r in audit_repository.stream(
            session, AuditFilter(), [SortKey("seq", False)])]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">([^<]*)</p>', html)
    assert found, f"no error next to {name}"
    return found.group(1)


def test_pages_follow_the_ledger_role_matrix(clinic: Any, browser: TestClient) -> None:
    receive(clinic)
    for name, role in STAFF.items():
        sign_in(browser, name)
        for path, roles in PAGES.items():
            response = browser.get(path)
            expected = 200 if role in roles else 403
            assert response.status_code == expected, (name, path, response.text[:300])
    # Nurses record but do not read the registers; compliance reads but records no receipt.
    sign_in(browser, "nina")
    nurse_view = browser.get("/ledger/receipts").text
    assert "Record a receipt" in nurse_view and "INV-1" not in nurse_view
    sign_in(browser, "cora")
    page = browser.get("/ledger/receipts").text
    assert "Record a receipt" not in page and "INV-1" in page
    refused = browser.post("/ledger/receipts", data={"csrf": csrf_of(page), "lot_number": "X"})
    assert refused.status_code == 403
    sign_in(browser, "tara")
    token = csrf_of(browser.get("/patients").text)
    assert browser.post("/ledger/waste", data={"csrf": token}).status_code == 403


def test_overview_shows_balances_expiry_tasks_and_last_count(clinic: Any,
                                                             browser: TestClient) -> None:
    receive(clinic, "L1")
    receive(clinic, "OLD", received=dt.date(2020, 1, 1), expiry=dt.date(2021, 1, 1))
    long_ago = now_us() - 60 * 86_400_000_000
    with unit_of_work(clinic.state.engine) as session:
        losses.record_loss(session, as_user("nina"), load_protocol(), losses.Loss(
            LOCATION, "L1", Decimal(50), None, long_ago, "vial broken, not recovered",
            kind="loss"))
    sign_in(browser, "cora")
    html = browser.get("/ledger").text
    assert "950.0000" in html and "19.0000" in html  # 1000 mg - 50 mg; 950 / 50 mg/mL
    assert "50.0000 mg/mL" in html
    expired = re.search(r'<tr class="expired"><td>(\w+)</td>', html)
    assert expired and expired.group(1) == "OLD"
    assert html.count('<span class="badge danger">overdue</span>') == 2
    assert "DEA Form 106" in html and "never counted" in html
    sign_in(browser, "nina")
    nurse = browser.get("/ledger").text
    assert "950.0000" in nurse and "DEA Form 106" not in nurse  # tasks are not a nurse's


def test_receipt_form_records_and_puts_errors_next_to_fields(clinic: Any,
                                                             browser: TestClient) -> None:
    sign_in(browser, "doc")
    token = csrf_of(browser.get("/ledger/receipts").text)
    today = dt.date.today()
    form = {"csrf": token, "location_id": LOCATION, "drug": "Ketamine HCl",
            "form": "injection solution", "strength": "50 mg/mL", "ndc": "0409-2053-10",
            "rxnorm": "6130", "lot_number": "R7", "expiry": (today.replace(year=today.year + 1)
                                                           ).isoformat(),
            "container_ml": "10", "containers": "3", "received": today.isoformat(),
            "supplier_name": "Pharma Supply", "supplier_address": "2 Depot Rd, Chicago",
            "supplier_dea": "AB1234563", "invoice_number": "INV-900"}
    done = browser.post("/ledger/receipts", data=form)
    assert done.status_code == 303, done.text[:500]
    listed = browser.get(done.headers["location"]).text
    assert "Receipt recorded" in listed and "INV-900" in listed and "1500.0000 mg" in listed
    assert balance(clinic, "R7") == Decimal(1500)

    bad = browser.post("/ledger/receipts", data={**form, "lot_number": "R8",
                                                 "strength": "fifty", "supplier_dea": "AB123"})
    assert bad.status_code == 422
    assert "check digit" in field_error(bad.text, "supplier_dea")
    assert 'aria-invalid="true" aria-describedby="supplier_dea-error"' in bad.text
    assert 'value="R8"' in bad.text  # what was typed stays in the form
    wrong_strength = browser.post("/ledger/receipts", data={**form, "lot_number": "R8",
                                                            "strength": "fifty"})
    assert wrong_strength.status_code == 422
    assert "mg/mL" in field_error(wrong_strength.text, "strength")
    future = browser.post("/ledger/receipts", data={
        **form, "lot_number": "R9", "received": (today + dt.timedelta(days=3)).isoformat()})
    assert future.status_code == 422 and "future" in field_error(future.text, "received")
    with unit_of_work(clinic.state.engine) as session:
        place = repository.location(session, LOCATION)
        assert place is not None and place.id is not None
        assert {lot.lot_number for lot, _ in repository.lots(session, place.id)} == {"R7"}
    receipts = [r for r in audit(clinic) if r["interaction"] == "operation:ledger-receipt"]
    # strength (400) and received date (422) were refused by the ledger; the DEA error never
    # reached it
    assert [r["status"] for r in receipts] == [200, 400, 422]
    assert receipts[0]["actor"] == "doc"


def test_count_with_a_variance_shows_it_and_raises_a_flag(clinic: Any,
                                                          browser: TestClient) -> None:
    receive(clinic)
    sign_in(browser, "nina")
    page = browser.get("/ledger/counts").text
    assert 'name="lot-0" value="L1"' in page
    token = csrf_of(page)
    missing = browser.post("/ledger/counts", data={
        "csrf": token, "location_id": LOCATION, "kind": "ad-hoc", "timing": "close",
        "mg-0": "lots", "method-0": "exact"})
    assert missing.status_code == 422 and "number" in field_error(missing.text, "mg-0")
    done = browser.post("/ledger/counts", data={
        "csrf": token, "location_id": LOCATION, "kind": "ad-hoc", "timing": "close",
        "mg-0": "990", "method-0": "estimated"})
    assert done.status_code == 200, done.text[:500]
    assert "Count recorded" in done.text and "-10.0000 mg / -0.2000 mL" in done.text
    flag = re.search(r"(Flag/[A-Za-z0-9\-.]+) was raised for compliance", done.text)
    assert flag, done.text
    with unit_of_work(clinic.state.engine) as session:
        stored = get_current(session, "Flag", flag.group(1).split("/")[1])
        assert stored is not None and stored.content
        resource = json.loads(stored.content)
    assert resource["subject"]["reference"] == f"Location/{LOCATION}"
    assert resource["status"] == "active" and "990.0000" in resource["code"]["text"]
    sign_in(browser, "cora")
    overview = browser.get("/ledger").text
    assert flag.group(1) in overview and "-10.0000 mg / -0.2000 mL" in overview
    assert "balanced" not in overview and "variance" in overview
    balanced = browser.post("/ledger/counts", data={
        "csrf": csrf_of(overview), "location_id": LOCATION, "kind": "ad-hoc",
        "timing": "opening", "ml-0": "20", "method-0": "exact"})
    assert balanced.status_code == 200 and "The count matches the books" in balanced.text


def waste_form(token: str, witness: str, password: str = PASSWORD, **extra: str
               ) -> dict[str, str]:
    return {"csrf": token, "location_id": LOCATION, "lot_number": "L1", "drawn_mg": "100",
            "given_mg": "80", "wasted_mg": "20", "witness_username": witness,
            "witness_password": password, **extra}


def test_waste_needs_a_second_person_who_signs_in(clinic: Any, browser: TestClient) -> None:
    receive(clinic)
    pid = patient(clinic)
    sign_in(browser, "nina")
    token = csrf_of(browser.get("/ledger/waste").text)
    herself = browser.post("/ledger/waste", data=waste_form(token, "nina"))
    assert herself.status_code == 422
    assert "second, different person" in field_error(herself.text, "witness_username")
    assert PASSWORD not in herself.text  # a password is never echoed into the page
    wrong = browser.post("/ledger/waste", data=waste_form(token, "doc", "not the password"))
    assert wrong.status_code == 422
    assert "password is not right" in field_error(wrong.text, "witness_password")
    sums = browser.post("/ledger/waste", data=waste_form(token, "doc", wasted_mg="30"))
    assert sums.status_code == 422 and "must equal given" in sums.text
    assert balance(clinic) == Decimal(1000)

    done = browser.post("/ledger/waste", data=waste_form(token, "doc",
                                                         patient=f"Patient/{pid}"))
    assert done.status_code == 303, done.text[:500]
    assert balance(clinic) == Decimal(980)
    with unit_of_work(clinic.state.engine) as session:
        entry = repository.entries(session, repository.EntryFilter(kinds=("waste",)))[0]
    assert (entry.actor_id, entry.witness_id, entry.patient) == ("nina", "doc", f"Patient/{pid}")
    records = audit(clinic)
    witnessing = [r for r in records if r["interaction"] == "reauth"]
    assert [r["status"] for r in witnessing] == [200, 403, 200, 200]
    wastes = [r for r in records if r["interaction"] == "operation:ledger-waste"]
    assert [r["status"] for r in wastes] == [422, 422, 200]
    assert wastes[-1]["patients"] == [pid]

    sign_in(browser, "cora")
    listed = browser.get("/ledger/waste").text
    assert "Doc (doc)" in listed and f"Patient/{pid}" in listed
    viewed = [r for r in audit(clinic) if r["interaction"] == "ui-view"
              and r["actor"] == "cora"]
    assert viewed and viewed[-1]["patients"] == [pid]


def test_schedule_iii_log_and_csv_export(clinic: Any, browser: TestClient) -> None:
    receive(clinic)
    pid = patient(clinic)
    sign_in(browser, "nina")
    token = csrf_of(browser.get("/ledger/waste").text)
    assert browser.post("/ledger/waste", data=waste_form(
        token, "doc2", patient=f"Patient/{pid}", note="=HYPERLINK(1)")).status_code == 303
    sign_in(browser, "doc")
    today = dt.date.today().isoformat()
    page = browser.get(f"/ledger/log?from={today}&to={today}&location={LOCATION}")
    assert page.status_code == 200
    assert "Ana Rivera" in page.text and "9 Elm St" in page.text and "Doc2" in page.text
    assert f"/ledger/log.csv?from={today}&amp;to={today}&amp;location={LOCATION}" in page.text
    empty = browser.get("/ledger/log?from=2001-01-01&to=2001-01-31")
    assert "No entries in this period" in empty.text and "Ana Rivera" not in empty.text
    bad = browser.get("/ledger/log?from=yesterday")
    assert bad.status_code == 400 and "expected YYYY-MM-DD" in bad.text

    export = browser.get(f"/ledger/log.csv?from={today}&to={today}&location={LOCATION}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["kind"], row["mg"], row["wasted_mg"], row["given_mg"]) == \
        ("waste", "-20.0000", "20.0000", "80.0000")
    assert row["patient_name"] == "Ana Rivera" and row["witness"] == "Doc2"
    assert row["dea_number"] == "BP1234563" and row["administered_by_id"] == "nina"

    records = audit(clinic)
    views = [r for r in records if r["interaction"] == "ui-view" and r["actor"] == "doc"]
    assert [v["patients"] for v in views] == [[pid], []]
    reports = [r for r in records if r["interaction"] == "operation:ledger-report"
               and r["actor"] == "doc"]
    assert reports[-1]["patients"] == [pid] and reports[-1]["status"] == 200


# -- destruction, theft/loss and corrections ------------------------------------------------

def local_time(days: float) -> str:
    return (dt.datetime.now() + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def destruction_form(token: str, first: str, second: str, **extra: str) -> dict[str, str]:
    return {"csrf": token, "location_id": LOCATION, "lot_number": "L1", "mg": "100",
            "method": "chemical digestion", "reason": "expired", "containers": "",
            "witness1_username": first, "witness1_password": PASSWORD,
            "witness2_username": second, "witness2_password": PASSWORD, **extra}


def test_destruction_needs_two_different_witnesses_who_sign_in(clinic: Any,
                                                              browser: TestClient) -> None:
    receive(clinic)
    make_user(clinic, "nurse2", "nurse")
    sign_in(browser, "tara")
    assert browser.get("/ledger/destruction").status_code == 403
    sign_in(browser, "nina")
    page = browser.get("/ledger/destruction")
    assert page.status_code == 200 and 'href="/ledger/corrections"' not in page.text
    token = csrf_of(page.text)
    same = browser.post("/ledger/destruction", data=destruction_form(token, "doc", "DOC"))
    assert same.status_code == 422
    assert "different people" in field_error(same.text, "witness2_username")
    blank = browser.post("/ledger/destruction", data=destruction_form(
        token, "doc", "cora", method="", mg="", witness1_password=""))
    assert blank.status_code == 422
    assert "method" in field_error(blank.text, "method")
    assert "mg or in mL" in field_error(blank.text, "mg")
    assert "own password" in field_error(blank.text, "witness1_password")
    wrong = browser.post("/ledger/destruction", data=destruction_form(
        token, "doc", "cora", witness2_password="not it at all"))
    assert wrong.status_code == 422
    assert "password is not right" in field_error(wrong.text, "witness2_password")
    assert PASSWORD not in wrong.text
    herself = browser.post("/ledger/destruction", data=destruction_form(token, "doc", "nina"))
    assert herself.status_code == 422
    assert "second, different person" in field_error(herself.text, "witness2_username")
    therapist = browser.post("/ledger/destruction", data=destruction_form(token, "tara",
                                                                          "cora"))
    assert therapist.status_code == 422
    assert "does not hold a role" in field_error(therapist.text, "witness1_username")
    too_much = browser.post("/ledger/destruction", data=destruction_form(
        token, "doc", "cora", mg="5000"))
    assert too_much.status_code == 422 and "cannot be destroyed" in too_much.text
    assert balance(clinic) == Decimal(1000)

    done = browser.post("/ledger/destruction", data=destruction_form(
        token, "doc", "nurse2", destroyed=local_time(-1), containers="2"))
    assert done.status_code == 303, done.text[:800]
    assert balance(clinic) == Decimal(900)
    with unit_of_work(clinic.state.engine) as session:
        entry = repository.entries(session, repository.EntryFilter(kinds=("destruction",)))[0]
    assert (entry.actor_id, entry.witness_id, entry.witness2_id) == ("nina", "doc", "nurse2")
    sign_in(browser, "cora")
    listed = browser.get(done.headers["location"]).text
    assert "Destruction recorded" in listed and "chemical digestion" in listed
    assert "BP1234563" in listed and "NDC 0409-2053-10" in listed and "2 containers" in listed
    assert f'href="/ledger/corrections?entry={entry.id}"' in listed
    records = audit(clinic)
    assert [r["status"] for r in records
            if r["interaction"] == "operation:ledger-destruction"] == [422, 422, 422, 200]
    witnessing = [r["status"] for r in records if r["interaction"] == "reauth"]
    assert witnessing.count(403) == 1 and witnessing.count(200) == 9


def test_theft_or_loss_report_opens_tasks_that_close_with_a_reference(
        clinic: Any, browser: TestClient) -> None:
    receive(clinic)
    sign_in(browser, "nina")
    token = csrf_of(browser.get("/ledger/losses").text)
    form = {"csrf": token, "location_id": LOCATION, "lot_number": "L1", "kind": "theft",
            "mg": "", "ml": "2", "discovered": local_time(-0.5),
            "circumstances": "Vial missing from the locked cabinet at opening count"}
    missing = browser.post("/ledger/losses", data={**form, "discovered": "", "kind": "",
                                                   "circumstances": " "})
    assert missing.status_code == 422
    assert "discovered" in field_error(missing.text, "discovered")
    assert "theft or loss" in field_error(missing.text, "kind")
    assert "circumstances" in field_error(missing.text, "circumstances")
    future = browser.post("/ledger/losses", data={**form, "discovered": local_time(3)})
    assert future.status_code == 422 and "future" in field_error(future.text, "discovered")
    done = browser.post("/ledger/losses", data=form)
    assert done.status_code == 303, done.text[:800]
    assert balance(clinic) == Decimal(900)  # 2 mL at 50 mg/mL
    nurse_view = browser.get(done.headers["location"]).text
    assert "Theft or loss recorded" in nurse_view and "DEA follow-ups" not in nurse_view
    assert browser.post("/ledger/tasks/1/close", data={"csrf": token, "reference": "X"}
                        ).status_code == 403

    sign_in(browser, "doc")
    page = browser.get("/ledger/losses").text
    ids = re.findall(r'<tr id="task-(\d+)">', page)
    assert len(ids) == 2 and page.count('<span class="badge warn">open</span>') == 2
    assert "Vial missing from the locked cabinet" in page
    token = csrf_of(page)
    empty = browser.post(f"/ledger/tasks/{ids[0]}/close", data={"csrf": token,
                                                                "reference": " "})
    assert empty.status_code == 422
    assert "reference" in field_error(empty.text, f"reference-{ids[0]}")
    closed = browser.post(f"/ledger/tasks/{ids[0]}/close", data={
        "csrf": token, "reference": "DEA-CONF-77", "note": "faxed"})
    assert closed.status_code == 303
    after = browser.get("/ledger/losses").text
    assert "DEA-CONF-77" in after and after.count('<span class="badge ok">done</span>') == 1
    again = browser.post(f"/ledger/tasks/{ids[0]}/close", data={"csrf": token,
                                                                "reference": "again"})
    assert again.status_code == 409
    assert "already closed" in field_error(again.text, f"reference-{ids[0]}")
    unknown = browser.post("/ledger/tasks/9999/close", data={"csrf": token, "reference": "x"})
    assert unknown.status_code == 404
    closes = [r["status"] for r in audit(clinic)
              if r["interaction"] == "operation:ledger-task-close"]
    assert closes == [200, 409, 404]  # the nurse was refused by the page, before the ledger


def test_corrections_reverse_an_entry_once_with_a_reason(clinic: Any,
                                                         browser: TestClient) -> None:
    receive(clinic)
    pid = patient(clinic)
    sign_in(browser, "nina")
    assert browser.get("/ledger/corrections").status_code == 403
    token = csrf_of(browser.get("/ledger/waste").text)
    assert browser.post("/ledger/waste", data=waste_form(
        token, "doc", patient=f"Patient/{pid}")).status_code == 303
    assert browser.post("/ledger/corrections", data={"csrf": token, "entry_id": "1",
                                                     "reason": "x"}).status_code == 403
    with unit_of_work(clinic.state.engine) as session:
        waste_id = repository.entries(session, repository.EntryFilter(kinds=("waste",)))[0].id
    assert balance(clinic) == Decimal(980)

    sign_in(browser, "cora")
    page = browser.get(f"/ledger/corrections?entry={waste_id}")
    assert page.status_code == 200 and f"Patient/{pid}" in page.text and "-20.0000" in page.text
    viewed = [r for r in audit(clinic) if r["interaction"] == "ui-view" and r["actor"] == "cora"]
    assert viewed[-1]["patients"] == [pid]
    token = csrf_of(page.text)
    no_reason = browser.post("/ledger/corrections", data={"csrf": token,
                                                          "entry_id": str(waste_id)})
    assert no_reason.status_code == 422 and "reason" in field_error(no_reason.text, "reason")
    unknown = browser.post("/ledger/corrections", data={"csrf": token, "entry_id": "9999",
                                                        "reason": "typo"})
    assert unknown.status_code == 422
    assert "does not exist" in field_error(unknown.text, "entry_id")
    done = browser.post("/ledger/corrections", data={
        "csrf": token, "entry_id": str(waste_id), "reason": "wrong lot recorded"})
    assert done.status_code == 303, done.text[:800]
    assert balance(clinic) == Decimal(1000)
    listed = browser.get(done.headers["location"]).text
    assert "Correction recorded" in listed and "wrong lot recorded" in listed
    twice = browser.post("/ledger/corrections", data={
        "csrf": token, "entry_id": str(waste_id), "reason": "again"})
    assert "already been corrected" in field_error(twice.text, "entry_id")
    with unit_of_work(clinic.state.engine) as session:
        fix = repository.correction_of(session, waste_id)
    assert fix is not None and fix.actor_id == "cora" and fix.reason == "wrong lot recorded"
    itself = browser.post("/ledger/corrections", data={
        "csrf": token, "entry_id": str(fix.id), "reason": "undo"})
    assert "itself a correction" in field_error(itself.text, "entry_id")
    assert balance(clinic) == Decimal(1000)
    corrections = [r for r in audit(clinic)
                   if r["interaction"] == "operation:ledger-correction"]
    assert [r["status"] for r in corrections] == [404, 200, 409, 409]
    assert corrections[1]["patients"] == [pid] and corrections[1]["actor"] == "cora"
