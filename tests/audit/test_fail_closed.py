"""Fail-closed and atomic (issue 4 items 2 and 6): when the audit record cannot be written the
request fails with 503 and returns no data, and nothing it would have written stays; when the
database rejects a write, the failure is still recorded. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ehr_testing import sealed
from sqlalchemy import Engine, text

from ehr.audit.canonical import GENESIS, link

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SECRET_NAME = "Zebulon-Fail-Closed"


@contextmanager
def refuse_insert(engine: Engine, table: str, column: str, value: str) -> Iterator[None]:
    """A trigger that makes the database refuse rows of ``table`` whose ``column`` is
    ``value``: the audit append (or a write) then fails inside the request's commit."""
    name = f"test_refuse_{table}"
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.{column} = '{value}' THEN RAISE EXCEPTION 'refused by test'; "
                "END IF; RETURN NEW; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                                 f"FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN NEW.{column} = "
                f"'{value}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END")
    try:
        yield
    finally:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


@contextmanager
def refuse_records(engine: Engine, actor: str) -> Iterator[None]:
    """Refuse the records of ``actor`` wherever a request writes them: the pending table (the
    PostgreSQL server's sealer chains them later) and the chain itself (SQLite, inline)."""
    with refuse_insert(engine, "audit_pending", "actor_id", actor), \
            refuse_insert(engine, "audit_record", "actor_id", actor):
        yield


def count(engine: Engine, sql: str, **params: Any) -> int:
    with sealed(engine).connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def chain_ok(engine: Engine) -> int:
    prev, seq = GENESIS, 0
    with sealed(engine).connect() as conn:
        for row in conn.execute(text(
                "SELECT seq, body, prev_hash, hash FROM audit_record ORDER BY seq")):
            seq += 1
            assert row.seq == seq and row.prev_hash == prev and link(prev, row.body) == row.hash
            prev = row.hash
        assert tuple(conn.execute(text("SELECT seq, hash FROM audit_head")).one()) == (seq, prev)
    return seq


def doomed(app: Any, bearer_header: Any) -> dict[str, str]:
    return {**FHIR_JSON, **bearer_header(app, subject="doomed", kind="client",
                                         scopes="system/*.cruds")}


def test_read_without_its_record_returns_503_and_no_data(
        app: Any, client: Any, engine: Engine, bearer_header: Any) -> None:
    pid = client.post("/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "name": [{"family": SECRET_NAME}]}).json()["id"]
    before = chain_ok(engine)
    with refuse_records(engine, "doomed"):
        headers = doomed(app, bearer_header)
        for url in (f"/fhir/Patient/{pid}", f"/fhir/Patient?family={SECRET_NAME}",
                    f"/fhir/Patient/{pid}/_history"):
            response = client.get(url, headers=headers)
            assert response.status_code == 503, response.text
            outcome = response.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert SECRET_NAME not in response.text and pid not in response.text
        # Others are not affected, and the trail has no trace of the refused appends.
        assert client.get(f"/fhir/Patient/{pid}").status_code == 200
    assert chain_ok(engine) == before + 1
    assert count(engine, "SELECT count(*) FROM audit_record WHERE actor_id = 'doomed'") == 0
    assert count(engine, "SELECT count(*) FROM audit_pending WHERE actor_id = 'doomed'") == 0


def test_write_without_its_record_stores_nothing(
        app: Any, client: Any, engine: Engine, bearer_header: Any) -> None:
    pid = client.post("/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "name": [{"family": "Kept"}]}).json()["id"]
    with refuse_records(engine, "doomed"):
        headers = doomed(app, bearer_header)
        created = client.post("/fhir/Patient", headers=headers, json={
            "resourceType": "Patient", "name": [{"family": SECRET_NAME}]})
        assert created.status_code == 503, created.text
        assert created.json()["resourceType"] == "OperationOutcome"
        assert "Location" not in created.headers
        updated = client.put(f"/fhir/Patient/{pid}", headers=headers, json={
            "resourceType": "Patient", "id": pid, "name": [{"family": SECRET_NAME}]})
        assert updated.status_code == 503
        bundle = client.post("/fhir", headers=headers, json={
            "resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Patient"},
                 "request": {"method": "POST", "url": "Patient"}}]})
        assert bundle.status_code == 503
    assert count(engine, "SELECT count(*) FROM resource") == 1
    assert count(engine, "SELECT count(*) FROM resource_version") == 1
    assert count(engine, "SELECT count(*) FROM resource_version WHERE content LIKE :n",
                 n=f"%{SECRET_NAME}%") == 0
    assert client.get(f"/fhir/Patient/{pid}").json()["name"] == [{"family": "Kept"}]
    chain_ok(engine)


def test_a_write_the_database_rejects_is_still_recorded(client: Any, engine: Engine) -> None:
    before = chain_ok(engine)
    with refuse_insert(engine, "resource_version", "rid", "rejected"):
        response = client.put("/fhir/Patient/rejected", headers=FHIR_JSON,
                              json={"resourceType": "Patient", "id": "rejected"})
        assert response.status_code >= 500, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
    assert count(engine, "SELECT count(*) FROM resource WHERE rid = 'rejected'") == 0
    assert count(engine, "SELECT count(*) FROM resource_version WHERE rid = 'rejected'") == 0
    with sealed(engine).connect() as conn:
        rows = conn.execute(text("SELECT body FROM audit_record WHERE seq > :s ORDER BY seq"),
                            {"s": before}).all()
    [record] = [json.loads(r[0]) for r in rows]
    assert record["interaction"] in ("update", "create")
    assert record["resource"]["type"] == "Patient" and record["resource"]["id"] == "rejected"
    assert record["outcome"] == "error" and record["status"] == response.status_code
    assert record["actor"]["id"] == "test-suite"
    assert record["request_id"] == response.headers["X-Request-ID"]
    chain_ok(engine)


def test_a_unique_violation_is_recorded(client: Any, engine: Engine) -> None:
    """A write refused by a constraint (two versions with the same number)."""
    pid = client.post("/fhir/Patient", headers=FHIR_JSON,
                      json={"resourceType": "Patient"}).json()["id"]
    before = chain_ok(engine)
    # Make the next version number collide: a stray history row already holds the number
    # the update will take (inserting is all the append-only table allows).
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO resource_version (res_pk, rtype, rid, version_id, last_updated, "
            "method, deleted, content, request_id, actor_id) SELECT res_pk, rtype, rid, 2, "
            "last_updated, method, deleted, content, request_id, actor_id FROM resource_version "
            "WHERE rid = :r"), {"r": pid})
    response = client.put(f"/fhir/Patient/{pid}", headers=FHIR_JSON,
                          json={"resourceType": "Patient", "id": pid, "active": True})
    assert response.status_code >= 400, response.text
    with sealed(engine).connect() as conn:
        rows = conn.execute(text("SELECT body FROM audit_record WHERE seq > :s ORDER BY seq"),
                            {"s": before}).all()
    [record] = [json.loads(r[0]) for r in rows]
    assert (record["interaction"], record["resource"]["id"]) == ("update", pid)
    assert record["outcome"] == "error" and record["status"] == response.status_code
    assert client.get(f"/fhir/Patient/{pid}").json().get("active") is None
