"""Care teams (issue 3 item 6): clinicians reach only their team's patients; the rest reads
exactly like data that does not exist, and searches are filtered inside the query."""

from __future__ import annotations

import re
from typing import Any

from ehr.auth import access_repository as repo
from ehr.db import unit_of_work

FHIR_JSON = {"Content-Type": "application/fhir+json"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def post(client: Any, resource: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**FHIR_JSON, **(headers or {})})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def patient(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}]}


def observation(pid: str, code: str = "8867-4") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}}


def team(pid: str, *members: str) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"member": {"reference": m}} for m in members]}


def physician(app: Any, bearer_header: Any, name: str = "drwho",
              practitioner: str | None = "Practitioner/drwho") -> dict[str, str]:
    return bearer_header(app, subject=name, kind="user", scopes="user/*.cruds",
                         roles=("physician",), practitioner=practitioner)


def ids_blanked(text: str) -> str:
    return UUID.sub("<id>", text)


def test_outside_read_is_exactly_not_found(app: Any, client: Any, bearer_header: Any) -> None:
    mine, theirs = post(client, patient("Mine")), post(client, patient("Theirs"))
    post(client, team(mine, "Practitioner/drwho"))
    obs = post(client, observation(theirs))
    doc = physician(app, bearer_header)
    assert client.get(f"/fhir/Patient/{mine}", headers=doc).status_code == 200
    for rtype, rid in (("Patient", theirs), ("Observation", obs)):
        hidden = client.get(f"/fhir/{rtype}/{rid}", headers=doc)
        fake = "00000000-0000-4000-8000-000000000000"
        missing = client.get(f"/fhir/{rtype}/{fake}", headers=doc)
        assert hidden.status_code == missing.status_code == 404
        assert ids_blanked(hidden.text) == ids_blanked(missing.text)
        assert {k: v for k, v in hidden.headers.items() if k != "x-request-id"} == \
            {k: v for k, v in missing.headers.items() if k != "x-request-id"}


def test_search_totals_count_only_the_team(app: Any, client: Any, bearer_header: Any) -> None:
    mine, theirs = post(client, patient("Mine")), post(client, patient("Theirs"))
    post(client, team(mine, "Practitioner/drwho"))
    own = {post(client, observation(mine)) for _ in range(3)}
    for _ in range(4):
        post(client, observation(theirs))
    doc = physician(app, bearer_header)
    everything = client.get("/fhir/Observation?_total=accurate", headers=doc).json()
    assert everything["total"] == len(own)
    assert {e["resource"]["id"] for e in everything["entry"]} == own
    counted = client.get("/fhir/Observation?_summary=count", headers=doc).json()
    assert counted["total"] == len(own) and "entry" not in counted
    # Paging: pages of 2 walk exactly the team's records, and the links end there.
    seen: list[str] = []
    url: str | None = "/fhir/Observation?_count=2&_total=accurate"
    while url:
        page = client.get(url, headers=doc).json()
        assert page["total"] == len(own)
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].removeprefix("http://testserver") if nxt else None
    assert sorted(seen) == sorted(own)
    targeted = client.get(f"/fhir/Observation?subject=Patient/{theirs}&_total=accurate",
                          headers=doc).json()
    assert targeted["total"] == 0 and "entry" not in targeted
    patients = client.get("/fhir/Patient?_total=accurate", headers=doc).json()
    assert [e["resource"]["id"] for e in patients["entry"]] == [mine]


def test_creator_of_patient_joins_its_team(app: Any, client: Any, bearer_header: Any,
                                           engine: Any) -> None:
    doc = physician(app, bearer_header)
    pid = post(client, patient("New"), doc)
    assert client.get(f"/fhir/Patient/{pid}", headers=doc).status_code == 200
    post(client, observation(pid), doc)
    other = physician(app, bearer_header, "drno", "Practitioner/drno")
    assert client.get(f"/fhir/Patient/{pid}", headers=other).status_code == 404
    # Without a Practitioner link the user itself is the member.
    bare = physician(app, bearer_header, "drbare", None)
    pid2 = post(client, patient("Bare"), bare)
    assert client.get(f"/fhir/Patient/{pid2}", headers=bare).status_code == 200
    with unit_of_work(engine, write=False) as session:
        assert ("Practitioner/drwho", "registration") in repo.members_of(session, pid)
        assert ("User/drbare", "registration") in repo.members_of(session, pid2)


def test_care_team_participants_change_access_at_once(app: Any, client: Any,
                                                     bearer_header: Any) -> None:
    pid = post(client, patient("Changing"))
    obs = post(client, observation(pid))
    doc = physician(app, bearer_header)
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404
    team_id = post(client, team(pid, "Practitioner/someone-else"))
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404
    added = {**team(pid, "Practitioner/someone-else", "Practitioner/drwho"), "id": team_id}
    assert client.put(f"/fhir/CareTeam/{team_id}", json=added,
                      headers=FHIR_JSON).status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 200
    assert client.get("/fhir/Observation", headers=doc).json()["total"] == 1
    removed = {**team(pid, "Practitioner/someone-else"), "id": team_id}
    assert client.put(f"/fhir/CareTeam/{team_id}", json=removed,
                      headers=FHIR_JSON).status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404
    # A suspended or inactive team grants nothing; deleting the team removes access too.
    again = post(client, team(pid, "Practitioner/drwho"))
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 200
    assert client.delete(f"/fhir/CareTeam/{again}").status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404
    for status in ("inactive", "suspended", "entered-in-error"):
        post(client, {**team(pid, "Practitioner/drwho"), "status": status})
        assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404
    resumed = post(client, {**team(pid, "Practitioner/drwho"), "status": "suspended"})
    assert client.put(f"/fhir/CareTeam/{resumed}", json={
        **team(pid, "Practitioner/drwho"), "id": resumed, "status": "active"},
        headers=FHIR_JSON).status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 200


def test_episode_of_care_manager_grants_access(app: Any, client: Any,
                                               bearer_header: Any) -> None:
    pid = post(client, patient("Episode"))
    obs = post(client, observation(pid))
    doc = physician(app, bearer_header)
    episode = {"resourceType": "EpisodeOfCare", "status": "active",
               "patient": {"reference": f"Patient/{pid}"},
               "careManager": {"reference": "Practitioner/drwho"}}
    eid = post(client, episode)
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 200
    finished = {**episode, "id": eid, "status": "finished"}
    assert client.put(f"/fhir/EpisodeOfCare/{eid}", json=finished,
                      headers=FHIR_JSON).status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=doc).status_code == 404


def test_cannot_write_into_another_patients_record(app: Any, client: Any,
                                                   bearer_header: Any) -> None:
    mine, theirs = post(client, patient("Mine")), post(client, patient("Theirs"))
    post(client, team(mine, "Practitioner/drwho"))
    doc = physician(app, bearer_header)
    nobody = client.post("/fhir/Observation", json=observation("nobody"),
                         headers={**FHIR_JSON, **doc})
    assert nobody.status_code == 404
    for body in (observation(theirs),
                 # Not a compartment element of the writer's choosing: any Patient reference.
                 {"resourceType": "Provenance", "target": [{"reference": f"Patient/{theirs}"}],
                  "recorded": "2024-01-02T10:00:00Z",
                  "agent": [{"who": {"reference": "Practitioner/drwho"}}]},
                 {**observation(mine), "performer": [{"reference": f"Patient/{theirs}"}]}):
        refused = client.post(f"/fhir/{body['resourceType']}", json=body,
                              headers={**FHIR_JSON, **doc})
        assert refused.status_code == 404, refused.text
        assert theirs not in refused.text
        # The same answer as for a patient that does not exist.
        assert refused.json() == nobody.json()
    # Moving one's own record into another patient's is refused as well.
    obs = post(client, observation(mine), doc)
    moved = client.put(f"/fhir/Observation/{obs}", json={**observation(theirs), "id": obs},
                       headers={**FHIR_JSON, **doc})
    assert moved.status_code == 404


def test_a_participant_is_a_member_only_within_its_period(app: Any, client: Any,
                                                          bearer_header: Any) -> None:
    pid = post(client, patient("Period"))
    obs = post(client, observation(pid))
    doc = physician(app, bearer_header)

    def with_period(period: dict[str, str]) -> dict[str, Any]:
        body = team(pid, "Practitioner/drwho")
        body["participant"][0]["period"] = period
        return body

    def sees() -> tuple[int, int]:
        read = client.get(f"/fhir/Observation/{obs}", headers=doc).status_code
        return read, client.get("/fhir/Observation", headers=doc).json()["total"]

    ended = post(client, with_period({"start": "2020-01-01", "end": "2021-06-30"}))
    future = post(client, with_period({"start": "2999-01-01"}))
    assert sees() == (404, 0)
    # Open-ended from a past start: a member now. A date is the whole day: an end of today
    # still counts until midnight (UTC).
    current = post(client, with_period({"start": "2020-01-01"}))
    assert sees() == (200, 1)
    assert client.put(f"/fhir/CareTeam/{current}", json={
        **with_period({"start": "2020-01-01", "end": "2021-01-01"}), "id": current},
        headers=FHIR_JSON).status_code == 200
    assert sees() == (404, 0)
    # The same member twice in one team, with two periods: a member within either, not in
    # the gap between them.
    both = team(pid, "Practitioner/drwho", "Practitioner/drwho")
    both["participant"][0]["period"] = {"end": "2021-01-01"}
    both["participant"][1]["period"] = {"start": "2999-01-01"}
    twice = post(client, both)
    assert sees() == (404, 0)
    both["participant"][1]["period"] = {"start": "2022-01-01"}
    assert client.put(f"/fhir/CareTeam/{twice}", json={**both, "id": twice},
                      headers=FHIR_JSON).status_code == 200
    assert sees() == (200, 1)
    assert ended and future
