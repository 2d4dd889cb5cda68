"""Reads by id under access control: one statement per (caller kind, type), decided in SQL on
every request (issue 3 item 13: cache the key, not the decisions), and planned as index
probes for the one row rather than hashes over a whole care team or label index."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from auth.test_care_teams import observation, patient, physician, post, team
from ehr.auth import access_repository as repo
from ehr.db import unit_of_work

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_patient_read_follows_team_changes_at_once(app: Any, client: Any,
                                                   bearer_header: Any) -> None:
    pid = post(client, patient("Changing"))
    doc = physician(app, bearer_header)  # one token throughout: nothing may be remembered
    assert client.get(f"/fhir/Patient/{pid}", headers=doc).status_code == 404
    team_id = post(client, team(pid, "Practitioner/drwho"))
    assert client.get(f"/fhir/Patient/{pid}", headers=doc).status_code == 200
    removed = {**team(pid, "Practitioner/someone-else"), "id": team_id}
    assert client.put(f"/fhir/CareTeam/{team_id}", json=removed,
                      headers=FHIR_JSON).status_code == 200
    assert client.get(f"/fhir/Patient/{pid}", headers=doc).status_code == 404


def test_user_without_practitioner_reads_by_user_key(app: Any, client: Any,
                                                    bearer_header: Any) -> None:
    # Its care-team rows name it ``User/<name>`` only (the creator joins the team).
    doc = physician(app, bearer_header, name="drno", practitioner=None)
    pid = post(client, patient("Keyed"), headers=doc)
    assert client.get(f"/fhir/Patient/{pid}", headers=doc).status_code == 200
    other = physician(app, bearer_header, name="drother", practitioner=None)
    assert client.get(f"/fhir/Patient/{pid}", headers=other).status_code == 404


def test_reads_by_id_probe_indexes_instead_of_hashing(app: Any, client: Any, bearer_header: Any,
                                                     engine: Any) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL query plans")
    mine = post(client, patient("Mine"))
    post(client, team(mine, "Practitioner/drwho"))
    obs = post(client, observation(mine))
    with unit_of_work(engine) as session:
        # A large team: a hashed subplan would read all of it for every single read.
        session.execute(sa.insert(repo.M), [
            {"patient_id": f"bulk-{i}", "member": "Practitioner/drwho",
             "source": "CareTeam/bulk", "created_at": 0} for i in range(400)])
    doc = physician(app, bearer_header)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if "care_team_member" in statement and "search_token" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        for path in (f"Patient/{mine}", f"Observation/{obs}"):
            assert client.get(f"/fhir/{path}", headers=doc).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(captured) == 2
    with engine.connect() as conn:
        for statement, parameters in captured:
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement,
                                                                 parameters))
            assert "hashed SubPlan" not in plan, plan
            assert "Seq Scan on search_token" not in plan, plan


def test_a_patient_is_in_no_compartment_but_its_own() -> None:
    # The read of a Patient checks its own id only (``patient_clause``): no Patient search
    # parameter may index a reference under the names the compartment rule follows.
    from ehr.fhir.search.params import search_params_for

    names = {p.name for p in search_params_for("Patient")}
    assert names and not names & set(repo.PATIENT_PARAMS)
