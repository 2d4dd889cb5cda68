"""What is recorded (issue 4 items 1 and 6): every FHIR interaction type yields exactly one
audit record, and that record is right (actor, source, interaction, resource, patients,
outcome, status, request id, purpose of use, protected categories); on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from ehr_testing import sealed
from sqlalchemy import Engine, text
from sqlmodel import Session

from ehr.audit.canonical import GENESIS, link
from ehr.auth.roles import role_ceiling
from ehr.context import RequestContext
from ehr.errors import Unprocessable
from ehr.store.hooks import Change
from ehr.store.repository import StoredResource

FHIR_JSON = {"Content-Type": "application/fhir+json"}
UA = "records-test/1.0"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MRN = "urn:test:mrn"
_COLUMNS = ("interaction", "outcome", "status", "actor_id", "actor_kind", "rtype", "rid",
            "version_id", "request_id", "purpose", "protected", "category")


class Trail:
    """The audit trail as a test reads it: records appended since the last look."""

    def __init__(self, engine: Engine, app: Any = None) -> None:
        self.engine = engine
        self.app = app
        self.mark = self.head()

    def head(self) -> int:
        with sealed(self.engine, self.app).connect() as conn:
            return int(conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one())

    def new(self) -> list[dict[str, Any]]:
        with sealed(self.engine, self.app).connect() as conn:
            rows = conn.execute(text(
                f"SELECT seq, body, {', '.join(_COLUMNS)} FROM audit_record WHERE seq > :s "
                "ORDER BY seq"), {"s": self.mark}).mappings().all()
            patients: dict[int, set[str]] = {}
            for seq, pid in conn.execute(text(
                    "SELECT seq, patient_id FROM audit_patient WHERE seq > :s"),
                    {"s": self.mark}):
                patients.setdefault(int(seq), set()).add(pid)
        out = []
        for row in rows:
            body = json.loads(row["body"])
            _agrees(body, row)
            assert set(body["patients"]) == patients.get(int(row["seq"]), set())
            out.append(body)
        if rows:
            self.mark = int(rows[-1]["seq"])
        return out

    def one(self) -> dict[str, Any]:
        records = self.new()
        assert len(records) == 1, [(r["interaction"], r["status"]) for r in records]
        return records[0]


def _agrees(body: dict[str, Any], row: Any) -> None:
    """The searchable columns repeat the body."""
    resource = body["resource"] or {}
    assert (row["interaction"], row["outcome"], row["status"], row["category"]) == (
        body["interaction"], body["outcome"], body["status"], body["category"])
    assert (row["actor_id"], row["actor_kind"]) == (body["actor"]["id"], body["actor"]["kind"])
    assert (row["rtype"], row["rid"], row["version_id"]) == (
        resource.get("type"), resource.get("id"), resource.get("version"))
    assert row["request_id"] == body["request_id"] and row["purpose"] == body["purpose_of_use"]
    assert bool(row["protected"]) == bool(body["protected"])


def chain_ok(engine: Engine) -> int:
    """Walk the whole chain: contiguous seq, linked and recomputable hashes, head = last."""
    prev, seq = GENESIS, 0
    with sealed(engine).connect() as conn:
        for row in conn.execute(text(
                "SELECT seq, body, prev_hash, hash FROM audit_record ORDER BY seq")):
            seq += 1
            assert row.seq == seq and json.loads(row.body)["seq"] == seq
            assert row.prev_hash == prev and link(prev, row.body) == row.hash
            prev = row.hash
        head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    assert (head.seq, head.hash) == (seq, prev)
    return seq


@pytest.fixture
def trail(engine: Engine, client: Any, app: Any) -> Trail:
    client.headers.update({"User-Agent": UA})
    return Trail(engine, app)


def rid() -> str:
    return uuid.uuid4().hex


def send(client: Any, method: str, url: str, body: Any = None, status: int | None = None,
         headers: dict[str, str] | None = None) -> Any:
    request_id = rid()
    response = client.request(method, url, json=body, headers={
        **FHIR_JSON, "X-Request-ID": request_id, **(headers or {})})
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["X-Request-ID"] == request_id
    return response


def patient(family: str = "Audit", mrn: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}]}
    if mrn:
        body["identifier"] = [{"system": MRN, "value": mrn}]
    return body


def observation(pid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/{pid}"}}


def create(client: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    return str(send(client, "POST", f"/fhir/{body['resourceType']}", body, 201,
                    headers).json()["id"])


def check(record: dict[str, Any], response: Any, *, interaction: str, status: int,
          outcome: str = "success", rtype: str | None = None, rid_: str | None = None,
          version: int | None = None, patients: set[str] | None = None,
          actor: str = "test-suite", kind: str = "client", purpose: str = "TREAT") -> None:
    assert record["interaction"] == interaction
    assert (record["status"], record["outcome"]) == (status, outcome)
    assert record["category"] in ("rest", "security")
    assert (record["actor"]["id"], record["actor"]["kind"]) == (actor, kind)
    assert record["source"] == {"ip": "testclient", "user_agent": UA}
    assert record["request_id"] == response.headers["X-Request-ID"]
    assert record["purpose_of_use"] == purpose
    if rtype is not None:
        assert record["resource"]["type"] == rtype
    if rid_ is not None:
        assert record["resource"]["id"] == rid_
    if version is not None:
        assert record["resource"]["version"] == version
    if patients is not None:
        assert set(record["patients"]) == patients
    assert record["time"].endswith("Z")


# -- reads ----------------------------------------------------------------------------------


def test_read_and_vread(client: Any, trail: Trail, engine: Engine) -> None:
    pid = create(client, patient())
    trail.new()
    response = send(client, "PUT", f"/fhir/Patient/{pid}", {**patient("Changed"), "id": pid},
                    200)
    check(trail.one(), response, interaction="update", status=200, rtype="Patient", rid_=pid,
          version=2, patients={pid})
    response = send(client, "GET", f"/fhir/Patient/{pid}", status=200)
    check(trail.one(), response, interaction="read", status=200, rtype="Patient", rid_=pid,
          version=2, patients={pid})
    response = send(client, "GET", f"/fhir/Patient/{pid}/_history/1", status=200)
    check(trail.one(), response, interaction="vread", status=200, rtype="Patient", rid_=pid,
          version=1, patients={pid})
    assert chain_ok(engine) == trail.mark


def test_search_names_every_patient_returned_including_includes(
        client: Any, trail: Trail) -> None:
    a, b, c = (create(client, patient(f"P{i}")) for i in range(3))
    obs_a, obs_b = create(client, observation(a)), create(client, observation(b))
    trail.new()
    response = send(client, "GET", "/fhir/Observation?_include=Observation:subject", status=200)
    record = trail.one()
    check(record, response, interaction="search-type", status=200, rtype="Observation",
          patients={a, b})
    assert "_include=Observation:subject" in record["query"]
    returned = {e["resource"]["id"] for e in response.json()["entry"]}
    assert {obs_a, obs_b, a, b} <= returned and c not in returned
    response = send(client, "GET", f"/fhir/Patient?_id={c}", status=200)
    check(trail.one(), response, interaction="search-type", status=200, patients={c})
    response = send(client, "GET", f"/fhir?_id={obs_a}", status=200)
    check(trail.one(), response, interaction="search-system", status=200, patients={a})


def test_history_at_every_level(client: Any, trail: Trail) -> None:
    a, b = create(client, patient("H1")), create(client, patient("H2"))
    trail.new()
    for url, level, patients in ((f"/fhir/Patient/{a}/_history", "instance", {a}),
                                 ("/fhir/Patient/_history", "type", {a, b}),
                                 ("/fhir/_history", "system", {a, b})):
        response = send(client, "GET", url, status=200)
        check(trail.one(), response, interaction=f"history-{level}", status=200,
              patients=patients)


# -- writes ---------------------------------------------------------------------------------


def test_create_update_delete(client: Any, trail: Trail, engine: Engine) -> None:
    pid = create(client, patient())
    trail.new()
    response = send(client, "POST", "/fhir/Observation", observation(pid), 201)
    oid = response.json()["id"]
    check(trail.one(), response, interaction="create", status=201, rtype="Observation",
          rid_=oid, version=1, patients={pid})
    response = send(client, "PUT", f"/fhir/Observation/{oid}",
                    {**observation(pid), "id": oid}, 200)
    check(trail.one(), response, interaction="update", status=200, rtype="Observation",
          rid_=oid, version=2, patients={pid})
    response = send(client, "DELETE", f"/fhir/Observation/{oid}")
    assert response.status_code in (200, 204)
    check(trail.one(), response, interaction="delete", status=200, rtype="Observation",
          rid_=oid, version=3, patients={pid})
    assert chain_ok(engine) == trail.mark


def test_conditional_create_with_and_without_a_match(client: Any, trail: Trail) -> None:
    trail.new()
    condition = {"If-None-Exist": f"identifier={MRN}|C1"}
    response = send(client, "POST", "/fhir/Patient", patient("Cond", "C1"), 201, headers=condition)
    pid = response.json()["id"]
    check(trail.one(), response, interaction="create", status=201, rtype="Patient", rid_=pid,
          version=1, patients={pid})
    # A match writes nothing but hands the existing record back: that disclosure is recorded.
    response = send(client, "POST", "/fhir/Patient", patient("Cond", "C1"), 200, headers=condition)
    record = trail.one()
    check(record, response, interaction=record["interaction"], status=200, rtype="Patient",
          rid_=pid, patients={pid})


def test_transaction_one_record_per_entry_and_one_for_the_bundle(
        client: Any, trail: Trail) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": urn, "resource": patient("Tx"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**observation("x"), "subject": {"reference": urn}},
         "request": {"method": "POST", "url": "Observation"}}]}
    trail.new()
    response = send(client, "POST", "/fhir", bundle, 200)
    locations = [e["response"]["location"] for e in response.json()["entry"]]
    pid, oid = (loc.split("/")[1] for loc in locations)
    records = trail.new()
    assert [r["interaction"] for r in records] == ["create", "create", "transaction"]
    check(records[0], response, interaction="create", status=201, rtype="Patient", rid_=pid,
          patients={pid})
    check(records[1], response, interaction="create", status=201, rtype="Observation",
          rid_=oid, patients={pid})
    check(records[2], response, interaction="transaction", status=200)
    assert records[2]["detail"]["entries"] == 2


def test_batch_failing_entry_leaves_a_failure_record_and_no_write_record(
        app: Any, client: Any, trail: Trail, engine: Engine) -> None:
    def explode_after_store(session: Session, ctx: RequestContext, change: Change) -> None:
        if ((change.resource or {}).get("code") or {}).get("text") == "boom":
            def fail(session: Session, stored: StoredResource) -> None:
                raise Unprocessable("boom after store")
            change.after_store.append(fail)

    app.state.pipeline.rules.register("Observation", explode_after_store)
    pid = create(client, patient("Batch"))
    trail.new()
    boom = {**observation(pid), "code": {"text": "boom"}}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": observation(pid), "request": {"method": "POST", "url": "Observation"}},
        # Written, then refused by a rule: the entry's savepoint takes the version back.
        {"resource": boom, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {**patient("Late"), "id": pid},
         "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"7"'}},
        {"resource": {"resourceType": "Patient", "gender": "sometimes"},
         "request": {"method": "POST", "url": "Patient"}}]}
    response = send(client, "POST", "/fhir", bundle, 200)
    statuses = [e["response"]["status"][:3] for e in response.json()["entry"]]
    assert statuses[:3] == ["201", "422", "412"] and statuses[3] in ("400", "422")
    records = trail.new()
    assert [r["interaction"] for r in records] == [
        "create", "batch-entry:post", "batch-entry:put", "batch-entry:post", "batch"]
    check(records[0], response, interaction="create", status=201, rtype="Observation",
          patients={pid})
    assert (records[1]["status"], records[1]["outcome"]) == (422, "error")
    assert records[1]["detail"]["entry"] == 1 and "boom" in records[1]["detail"]["reason"]
    assert (records[2]["status"], records[2]["outcome"]) == (412, "error")
    assert records[2]["resource"] == {"type": "Patient", "id": pid, "version": None}
    assert records[3]["outcome"] == "error" and records[3]["detail"]["entry"] == 3
    assert records[4]["detail"] == {"entries": 4, "failed": 3}
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT rtype, count(*) FROM resource_version "
                                     "GROUP BY rtype")).all()
        writes = conn.execute(text("SELECT rtype, count(*) FROM audit_record WHERE "
                                   "interaction IN ('create', 'update') GROUP BY rtype")).all()
    # Every stored version has its write record and no write record lacks its version.
    assert dict(versions) == dict(writes) == {"Patient": 1, "Observation": 1}


def test_validate_operation(client: Any, trail: Trail) -> None:
    trail.new()
    response = send(client, "POST", "/fhir/Patient/$validate", patient("V"), 200)
    record = trail.one()
    check(record, response, interaction="operation:validate", status=200, rtype="Patient")


# -- refusals and failures --------------------------------------------------------------------


def test_denied_request_is_recorded_in_its_own_transaction(
        app: Any, client: Any, trail: Trail, bearer_header: Any, engine: Engine) -> None:
    reader = bearer_header(app, subject="read-only", kind="client", scopes="system/Patient.rs")
    trail.new()
    response = send(client, "POST", "/fhir/Patient", patient("Denied"), 403, headers=reader)
    check(trail.one(), response, interaction="create", status=403, outcome="denied",
          rtype="Patient", actor="read-only")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM resource")).scalar_one() == 0


def test_not_found_and_invalid(client: Any, trail: Trail) -> None:
    trail.new()
    response = send(client, "GET", "/fhir/Patient/no-such-patient", status=404)
    check(trail.one(), response, interaction="read", status=404, outcome="error",
          rtype="Patient", rid_="no-such-patient")
    response = send(client, "POST", "/fhir/Patient",
                    {"resourceType": "Patient", "gender": "sometimes"})
    assert response.status_code in (400, 422)
    check(trail.one(), response, interaction="create", status=response.status_code,
          outcome="error", rtype="Patient")


# -- purpose of use and protected categories ---------------------------------------------------


def _user(app: Any, bearer_header: Any, name: str, role: str) -> dict[str, str]:
    return bearer_header(app, subject=name, kind="user", scopes=str(role_ceiling([role])),
                         roles=(role,), practitioner=f"Practitioner/{name}")


def test_break_the_glass_marks_records_emergency(
        app: Any, client: Any, trail: Trail, bearer_header: Any) -> None:
    pid = create(client, patient("Emergency"))
    doc = _user(app, bearer_header, "er-doc", "physician")
    assert send(client, "GET", f"/fhir/Patient/{pid}", headers=doc).status_code == 404
    trail.new()
    granted = send(client, "POST", "/auth/break-glass",
                   {"patient": pid, "reason": "Unconscious in the ED, allergies unknown"},
                   201, headers=doc)
    record = trail.one()
    check(record, granted, interaction="break-glass-granted", status=201, rtype="Patient",
          rid_=pid, patients={pid}, actor="er-doc", kind="user", purpose="ETREAT")
    assert record["category"] == "security" and record["detail"]["grant"] == granted.json()["id"]
    response = send(client, "GET", f"/fhir/Patient/{pid}", status=200, headers=doc)
    check(trail.one(), response, interaction="read", status=200, rtype="Patient", rid_=pid,
          patients={pid}, actor="er-doc", kind="user", purpose="ETREAT")


def test_psychotherapy_note_read_by_its_author_is_flagged(
        app: Any, client: Any, trail: Trail, bearer_header: Any) -> None:
    pid = create(client, patient("Labelled"))
    create(client, {"resourceType": "CareTeam", "status": "active",
                    "subject": {"reference": f"Patient/{pid}"},
                    "participant": [{"member": {"reference": "Practitioner/t1"}}]})
    t1 = _user(app, bearer_header, "t1", "therapist")
    note = create(client, {
        "resourceType": "DocumentReference", "status": "current",
        "meta": {"security": [{"system": ACT_CODE, "code": "PSYTHPN"}]},
        "subject": {"reference": f"Patient/{pid}"}, "type": {"text": "Psychotherapy note"},
        "author": [{"reference": "Practitioner/t1"}],
        "content": [{"attachment": {"contentType": "text/plain",
                                    "data": base64.b64encode(b"private").decode()}}]}, headers=t1)
    trail.new()
    response = send(client, "GET", f"/fhir/DocumentReference/{note}", status=200, headers=t1)
    record = trail.one()
    check(record, response, interaction="read", status=200, rtype="DocumentReference",
          rid_=note, patients={pid}, actor="t1", kind="user")
    assert record["protected"] == ["PSYTHPN"]
    response = send(client, "GET", f"/fhir/Patient/{pid}", status=200, headers=t1)
    assert trail.one()["protected"] == []
