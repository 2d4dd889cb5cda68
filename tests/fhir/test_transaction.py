"""Transaction Bundles (FHIR R4 http.html#transaction) over HTTP, on SQLite and PostgreSQL:
atomicity, fullUrl and conditional reference resolution, conditional entries, processing order,
the transaction-response shape, and the spec's own example Bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.fhir.pipeline import AccessEvent
from ehr.fhir.transaction_entries import MAX_ENTRIES
from ehr.store.tables import ResourceRow

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRN = "urn:test:mrn"
ORG_IDS = "urn:test:org"
PATIENT_URN = "urn:uuid:9a6a2c3e-0d5f-4b8e-9a43-6f1f7e1c0001"


def patient(mrn: str | None = None, family: str = "Chalmers") -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}]}
    if mrn:
        body["identifier"] = [{"system": MRN, "value": mrn}]
    return body


def observation(subject: str, text: str = "heart rate", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": subject}, **extra}


def entry(method: str, url: str, resource: dict[str, Any] | None = None,
          full_url: str | None = None, **request: str) -> dict[str, Any]:
    out: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url:
        out["fullUrl"] = full_url
    return out


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(client: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir", content=json.dumps(body), headers={**FHIR_JSON, **headers})


def create(client: Any, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def stored_count(engine: Engine, rtype: str | None = None) -> int:
    r = ResourceRow.__table__  # type: ignore[attr-defined]
    query = sa.select(sa.func.count()).select_from(r).where(r.c.deleted == sa.false())
    if rtype:
        query = query.where(r.c.rtype == rtype)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def read(client: Any, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def location_ref(response_entry: dict[str, Any]) -> str:
    """``Type/id`` out of ``response.location`` (``Type/id/_history/v``)."""
    rtype, rid = response_entry["response"]["location"].split("/")[:2]
    return f"{rtype}/{rid}"


def expressions(outcome: dict[str, Any]) -> list[str]:
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]


# -- references between entries ----------------------------------------------------------------


def test_urn_uuid_references_are_rewritten_everywhere(client: Any) -> None:
    obs_urn = "urn:uuid:9a6a2c3e-0d5f-4b8e-9a43-6f1f7e1c0002"
    nested = observation(PATIENT_URN, "panel", hasMember=[{"reference": obs_urn}],
                         contained=[{"resourceType": "Provenance", "id": "p1",
                                     "recorded": "2024-01-01T00:00:00Z",
                                     "agent": [{"who": {"reference": PATIENT_URN}}],
                                     "target": [{"reference": obs_urn}]}],
                         extension=[{"url": "http://example.org/x",
                                     "valueReference": {"reference": PATIENT_URN}}])
    response = post(client, bundle(
        entry("POST", "Observation", nested),
        entry("POST", "Observation", observation(PATIENT_URN), obs_urn),
        entry("POST", "Patient", patient("1"), PATIENT_URN),
    ))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    patient_ref, member_ref = location_ref(entries[2]), location_ref(entries[1])
    assert patient_ref.startswith("Patient/") and member_ref.startswith("Observation/")
    panel = read(client, location_ref(entries[0]))
    assert panel["subject"]["reference"] == patient_ref
    assert panel["hasMember"][0]["reference"] == member_ref
    assert panel["extension"][0]["valueReference"]["reference"] == patient_ref
    assert panel["contained"][0]["agent"][0]["who"]["reference"] == patient_ref
    assert panel["contained"][0]["target"][0]["reference"] == member_ref
    assert read(client, member_ref)["subject"]["reference"] == patient_ref
    assert "urn:uuid" not in json.dumps(panel)


def test_absolute_full_url_and_relative_references_resolve(client: Any) -> None:
    base = "http://other.example.org/fhir"
    response = post(client, bundle(
        entry("POST", "Patient", patient("2"), f"{base}/Patient/temp1"),
        entry("POST", "Observation", observation(f"{base}/Patient/temp1"),
              f"{base}/Observation/o1"),
        entry("POST", "Observation", observation("Patient/temp1"), f"{base}/Observation/o2"),
    ))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    new_patient = location_ref(entries[0])
    assert new_patient != "Patient/temp1"
    assert read(client, location_ref(entries[1]))["subject"]["reference"] == new_patient
    # A relative reference inside an entry with an absolute fullUrl is read against its base.
    assert read(client, location_ref(entries[2]))["subject"]["reference"] == new_patient


def test_dangling_placeholder_fails_the_transaction(client: Any, engine: Engine) -> None:
    response = post(client, bundle(
        entry("POST", "Patient", patient("3"), PATIENT_URN),
        entry("POST", "Observation",
              observation("urn:uuid:00000000-0000-0000-0000-00000000dead")),
    ))
    assert response.status_code == 404, response.text
    assert "Bundle.entry[1].resource.subject" in expressions(response.json())
    assert stored_count(engine) == 0


# -- atomicity ---------------------------------------------------------------------------------


def test_failing_third_entry_leaves_nothing(client: Any, engine: Engine) -> None:
    bad = {"resourceType": "Observation", "code": {"text": "no status"}}
    response = post(client, bundle(
        entry("POST", "Patient", patient("4"), PATIENT_URN),
        entry("POST", "Observation", observation(PATIENT_URN)),
        entry("POST", "Observation", bad),
    ))
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(e.startswith("Bundle.entry[2]") for e in expressions(outcome))
    assert stored_count(engine) == 0


def test_failing_write_after_successful_writes_rolls_back(client: Any, engine: Engine) -> None:
    pid = create(client, patient("5"))
    before = read(client, f"Patient/{pid}")
    response = post(client, bundle(
        entry("POST", "Patient", patient("6")),
        entry("PUT", f"Patient/{pid}", {**patient("5", "Changed"), "id": pid}),
        entry("PUT", f"Patient/{pid}-other", {**patient("7"), "id": f"{pid}-other"},
              ifMatch='W/"3"'),
    ))
    assert response.status_code == 412, response.text
    assert "Bundle.entry[2]" in expressions(response.json())
    assert stored_count(engine) == 1
    assert read(client, f"Patient/{pid}") == before


# -- conditional entries -------------------------------------------------------------------------


def test_if_none_exist_match_reuses_the_existing_resource(client: Any, engine: Engine) -> None:
    existing = create(client, patient("10"))
    response = post(client, bundle(
        entry("POST", "Patient", patient("10"), PATIENT_URN, ifNoneExist=f"identifier={MRN}|10"),
        entry("POST", "Observation", observation(PATIENT_URN)),
    ))
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert location_ref(first) == f"Patient/{existing}"
    assert read(client, location_ref(second))["subject"]["reference"] == f"Patient/{existing}"
    assert stored_count(engine, "Patient") == 1


def test_if_none_exist_without_match_creates(client: Any, engine: Engine) -> None:
    create(client, patient("11"))
    response = post(client, bundle(
        entry("POST", "Patient", patient("12"), PATIENT_URN, ifNoneExist=f"identifier={MRN}|12"),
    ))
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["response"]["status"] == "201 Created"
    assert stored_count(engine, "Patient") == 2


def test_if_none_exist_with_several_matches_fails(client: Any, engine: Engine) -> None:
    create(client, patient("13"))
    create(client, patient("13"))
    response = post(client, bundle(
        entry("POST", "Observation", observation("Patient/x")),
        entry("POST", "Patient", patient("13"), ifNoneExist=f"identifier={MRN}|13"),
    ))
    assert response.status_code == 412, response.text
    assert "Bundle.entry[1]" in expressions(response.json())
    assert stored_count(engine) == 2


def test_conditional_update_entries(client: Any, engine: Engine) -> None:
    existing = create(client, patient("20"))
    response = post(client, bundle(
        entry("PUT", f"Patient?identifier={MRN}|20", patient("20", "Updated")),
        entry("PUT", f"Patient?identifier={MRN}|21", patient("21", "New")),
    ))
    assert response.status_code == 200, response.text
    updated, created = response.json()["entry"]
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["location"] == f"Patient/{existing}/_history/2"
    assert created["response"]["status"] == "201 Created"
    assert read(client, f"Patient/{existing}")["name"][0]["family"] == "Updated"
    assert read(client, location_ref(created))["name"][0]["family"] == "New"
    assert stored_count(engine, "Patient") == 2


def test_conditional_delete_entries(client: Any, engine: Engine) -> None:
    doomed = create(client, patient("30"))
    kept = create(client, patient("31"))
    response = post(client, bundle(
        entry("DELETE", f"Patient?identifier={MRN}|30"),
        entry("DELETE", f"Patient?identifier={MRN}|nobody"),
    ))
    assert response.status_code == 200, response.text
    deleted, nothing = response.json()["entry"]
    assert deleted["response"]["status"] == "204 No Content"
    assert deleted["response"]["etag"] == 'W/"2"'
    assert nothing["response"]["status"] == "200 OK"
    assert nothing["response"]["outcome"]["issue"][0]["severity"] == "information"
    assert client.get(f"/fhir/Patient/{doomed}").status_code == 410
    assert read(client, f"Patient/{kept}")["id"] == kept
    assert stored_count(engine, "Patient") == 1


def test_if_match_on_delete_and_put(client: Any, engine: Engine) -> None:
    pid = create(client, patient("32"))
    stale = post(client, bundle(entry("DELETE", f"Patient/{pid}", ifMatch='W/"2"')))
    assert stale.status_code == 412, stale.text
    ok = post(client, bundle(
        entry("PUT", f"Patient/{pid}", {**patient("32", "V2"), "id": pid}, ifMatch='W/"1"')))
    assert ok.status_code == 200, ok.text
    assert ok.json()["entry"][0]["response"]["etag"] == 'W/"2"'
    assert stored_count(engine, "Patient") == 1


# -- conditional references ----------------------------------------------------------------------


def _org(value: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "name": f"Org {value}",
            "identifier": [{"system": ORG_IDS, "value": value}]}


def test_conditional_reference_with_one_match_is_resolved(client: Any) -> None:
    org = create(client, _org("A"))
    response = post(client, bundle(
        entry("POST", "Patient", {**patient("40"), "managingOrganization": {
            "reference": f"Organization?identifier={ORG_IDS}|A"}}),
    ))
    assert response.status_code == 200, response.text
    stored = read(client, location_ref(response.json()["entry"][0]))
    assert stored["managingOrganization"]["reference"] == f"Organization/{org}"


def test_conditional_reference_without_match_fails_whole_bundle(
    client: Any, engine: Engine
) -> None:
    response = post(client, bundle(
        entry("POST", "Patient", patient("41")),
        entry("POST", "Observation", observation("Patient/whatever")),
        entry("POST", "Patient", {**patient("42"), "managingOrganization": {
            "reference": f"Organization?identifier={ORG_IDS}|missing"}}),
    ))
    assert response.status_code == 404, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    assert f"Organization?identifier={ORG_IDS}|missing" in outcome["issue"][0]["diagnostics"]
    assert expressions(outcome) == ["Bundle.entry[2].resource.managingOrganization"]
    assert stored_count(engine) == 0


def test_conditional_reference_with_several_matches_fails(client: Any, engine: Engine) -> None:
    create(client, _org("B"))
    create(client, _org("B"))
    response = post(client, bundle(
        entry("POST", "Patient", {**patient("43"), "managingOrganization": {
            "reference": f"Organization?identifier={ORG_IDS}|B"}}),
    ))
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["code"] == "multiple-matches"
    assert expressions(response.json()) == ["Bundle.entry[0].resource.managingOrganization"]
    assert stored_count(engine) == 2


# -- order, identity clashes, response shape ----------------------------------------------------


def test_processing_order_is_delete_post_put_get(client: Any) -> None:
    old = create(client, patient("50"))
    response = post(client, bundle(
        entry("GET", f"Patient?identifier={MRN}|50"),
        entry("PUT", "Patient/fifty-one", {**patient("51"), "id": "fifty-one"}),
        entry("POST", "Patient", patient("50", "Reborn"), ifNoneExist=f"identifier={MRN}|50"),
        entry("DELETE", f"Patient/{old}"),
    ))
    assert response.status_code == 200, response.text
    search, put, created, deleted = response.json()["entry"]
    # DELETE ran before POST, so If-None-Exist no longer matched the old Patient.
    assert deleted["response"]["status"] == "204 No Content"
    assert created["response"]["status"] == "201 Created"
    assert location_ref(created) != f"Patient/{old}"
    assert put["response"]["location"] == "Patient/fifty-one/_history/1"
    # GET ran last and sees the new Patient only.
    found = search["resource"]["entry"]
    assert [e["resource"]["id"] for e in found] == [location_ref(created).split("/")[1]]
    assert search["response"]["status"] == "200 OK"


@pytest.mark.parametrize("entries", [
    [entry("POST", "Patient", patient("60"), PATIENT_URN),
     entry("POST", "Patient", patient("61"), PATIENT_URN)],
    [entry("PUT", "Patient/same", {**patient("62"), "id": "same"}),
     entry("PUT", "Patient/same", {**patient("63"), "id": "same"})],
    [entry("PUT", "Patient/same", {**patient("64"), "id": "same"}),
     entry("DELETE", "Patient/same")],
], ids=["same-fullUrl", "same-resource-twice", "put-and-delete"])
def test_identity_clashes_are_refused(client: Any, engine: Engine,
                                      entries: list[dict[str, Any]]) -> None:
    response = post(client, bundle(*entries))
    assert response.status_code == 400, response.text
    named = expressions(response.json())
    assert any(e.startswith("Bundle.entry[0]") for e in named)
    assert any(e.startswith("Bundle.entry[1]") for e in named)
    assert stored_count(engine) == 0


def test_response_bundle_shape(client: Any) -> None:
    existing = create(client, patient("70"))
    response = post(client, bundle(
        entry("POST", "Patient", patient("71"), PATIENT_URN),
        entry("PUT", f"Patient/{existing}", {**patient("70", "Two"), "id": existing}),
        entry("GET", f"Patient/{existing}"),
    ))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
    assert len(body["entry"]) == 3
    created, updated, got = body["entry"]
    assert created["response"]["status"] == "201 Created"
    assert re.fullmatch(r"Patient/[A-Za-z0-9\-.]+/_history/1", created["response"]["location"])
    assert created["response"]["etag"] == 'W/"1"'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", created["response"]["lastModified"])
    assert "resource" not in created  # the default is a minimal response
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["location"] == f"Patient/{existing}/_history/2"
    # GET entries always carry what they read, and see the PUT before them.
    assert got["resource"]["name"][0]["family"] == "Two"
    assert got["response"]["etag"] == 'W/"2"'


def test_prefer_representation_and_operation_outcome(client: Any) -> None:
    full = post(client, bundle(entry("POST", "Patient", patient("72"))),
                Prefer="return=representation").json()["entry"][0]
    assert full["resource"]["resourceType"] == "Patient"
    assert full["resource"]["meta"]["versionId"] == "1"
    assert full["fullUrl"].endswith(location_ref(full))
    outcome = post(client, bundle(entry("POST", "Patient", patient("73"))),
                   Prefer="return=OperationOutcome").json()["entry"][0]
    assert outcome["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert "resource" not in outcome


# -- refusals of the envelope --------------------------------------------------------------------


@pytest.mark.parametrize("body,status", [
    (patient("80"), 400),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, 400),
    ({"resourceType": "Bundle", "type": "transaction", "entry": {"x": 1}}, 400),
    (bundle({"fullUrl": PATIENT_URN}), 400),
    (bundle(entry("POST", "Patient")), 400),
    (bundle(entry("POST", "Patient/abc", patient("81"))), 400),
    (bundle(entry("PATCH", "Patient/abc")), 405),
    (bundle(entry("POST", "ValueSet/$lookup", {"resourceType": "Parameters"})), 400),
    (bundle(entry("PUT", "Patient/abc", {**patient("82"), "id": "xyz"})), 400),
    (bundle(entry("POST", "Observation", patient("83"))), 400),
])
def test_bad_bundles_are_refused(client: Any, engine: Engine, body: dict[str, Any],
                                 status: int) -> None:
    response = post(client, body)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert stored_count(engine) == 0


def test_too_many_entries(client: Any, engine: Engine) -> None:
    many = bundle(*[entry("GET", "Patient/x")] * (MAX_ENTRIES + 1))
    response = post(client, many)
    assert response.status_code == 413, response.text


def test_transaction_is_audited_once_plus_each_write(client: Any, app: Any) -> None:
    events: list[AccessEvent] = []

    class Recorder:
        def record(self, session: Any, ctx: Any, event: AccessEvent) -> None:
            events.append(event)

    app.state.pipeline.recorder = Recorder()
    response = post(client, bundle(entry("POST", "Patient", patient("90"), PATIENT_URN),
                                   entry("POST", "Observation", observation(PATIENT_URN))))
    assert response.status_code == 200, response.text
    kinds = [e.interaction for e in events]
    assert kinds.count("transaction") == 1
    assert kinds.count("create") == 2
    assert next(e for e in events if e.interaction == "transaction").detail["entries"] == 2


# -- the spec's example ------------------------------------------------------------------------


def _example(fhir_data: Path) -> dict[str, Any]:
    return dict(json.loads((fhir_data / "r4-examples" / "Bundle-bundle-transaction.json")
                           .read_text()))


def test_official_example_as_is_is_refused_whole(client: Any, engine: Engine,
                                                 fhir_data: Path) -> None:
    example = _example(fhir_data)
    lookup = next(i for i, e in enumerate(example["entry"]) if "$" in e["request"]["url"])
    response = post(client, example)
    # ValueSet/$lookup is a terminology operation this server does not offer.
    assert response.status_code == 400, response.text
    assert expressions(response.json()) == [f"Bundle.entry[{lookup}].request.url"]
    assert stored_count(engine) == 0


def test_official_example_without_the_operation(client: Any, engine: Engine,
                                                fhir_data: Path) -> None:
    example = _example(fhir_data)
    example["entry"] = [e for e in example["entry"] if "$" not in e["request"]["url"]]
    requests = [e["request"] for e in example["entry"]]

    # On an empty server the If-Match on Patient/123a cannot hold: the whole Bundle fails.
    guarded = next(i for i, r in enumerate(requests) if r.get("ifMatch"))
    refused = post(client, example)
    assert refused.status_code == 412, refused.text
    assert f"Bundle.entry[{guarded}]" in expressions(refused.json())
    assert stored_count(engine) == 0

    # Give Patient/123a the version the example expects, and Patient/12334 the version its
    # If-None-Match names, then the example goes through.
    for version in (1, 2):
        assert client.put("/fhir/Patient/123a", json={**patient(), "id": "123a",
                                                      "gender": ["male", "female"][version - 1]},
                          headers=FHIR_JSON).status_code in (200, 201)
    for _ in range(4):
        client.put("/fhir/Patient/12334", json={**patient("x"), "id": "12334"},
                   headers=FHIR_JSON)
    response = post(client, example)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert len(entries) == len(requests)
    by_kind = dict(zip((f"{r['method']} {r['url']}" for r in requests), entries, strict=True))
    assert by_kind["POST Patient"]["response"]["status"] == "201 Created"
    assert by_kind["PUT Patient/123"]["response"]["location"] == "Patient/123/_history/1"
    assert by_kind["PUT Patient/123a"]["response"]["location"] == "Patient/123a/_history/3"
    conditional_put = next(v for k, v in by_kind.items() if k.startswith("PUT Patient?"))
    assert conditional_put["response"]["status"] == "201 Created"
    # Deleting what does not exist is a success (R4 http.html#delete), with a note.
    for key in ("DELETE Patient/234", "DELETE Patient?identifier=123456"):
        assert by_kind[key]["response"]["status"] == "200 OK"
        assert by_kind[key]["response"]["outcome"]["issue"][0]["severity"] == "information"
    # The search runs after the writes: it sees every "Peter" the Bundle wrote.
    search = by_kind["GET Patient?name=peter"]["resource"]
    peters = {e["resource"]["id"] for e in search["entry"]}
    written = {location_ref(v).split("/")[1] for k, v in by_kind.items()
               if k.startswith(("POST", "PUT"))}
    assert written <= peters
    assert by_kind["GET Patient/12334"]["response"]["status"] == "304 Not Modified"
    assert "resource" not in by_kind["GET Patient/12334"]

    # Sent again, If-None-Exist now matches and the If-Match is stale: nothing changes.
    count = stored_count(engine, "Patient")
    again = post(client, example)
    assert again.status_code == 412, again.text
    assert stored_count(engine, "Patient") == count


def test_every_invalid_entry_is_reported_at_once(client: Any, engine: Engine) -> None:
    response = post(client, bundle(
        entry("POST", "Patient", {**patient("91"), "gender": "bogus"}),
        entry("POST", "Patient", patient("92")),
        entry("POST", "Observation", {"resourceType": "Observation", "code": {"text": "x"}}),
    ))
    assert response.status_code == 422, response.text
    named = expressions(response.json())
    assert "Bundle.entry[0].resource.gender" in named
    assert "Bundle.entry[2].resource.status" in named
    assert not any(e.startswith("Bundle.entry[1]") for e in named)
    assert stored_count(engine) == 0
