"""The error matrix over HTTP: every refusal has the right status, an OperationOutcome body with a
meaningful issue code (and the faulty element where there is one), stores nothing, and no input
ever produces a 500."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ehr.config import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def outcome(
    response: Any, status: int, codes: tuple[str, ...] | str | None = None
) -> dict[str, Any]:
    """Assert the status and an OperationOutcome body; return the body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    for issue in body["issue"]:
        assert issue["severity"] in ("fatal", "error", "warning", "information")
        assert issue["code"]
    if codes is not None:
        wanted = (codes,) if isinstance(codes, str) else codes
        assert body["issue"][0]["code"] in wanted, body
    return body


def expressions(body: dict[str, Any]) -> list[str]:
    return [e for issue in body["issue"] for e in issue.get("expression", [])]


def versions(client: Any) -> int:
    response = client.get("/fhir/_history")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


@pytest.fixture
def seeded(client: Any) -> str:
    """One stored Patient, so failing updates have something to damage."""
    response = client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"},
                          headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return "p1"


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"resourceType": "Patient",', b"{'a': 1}", b"", b"\xff\xfe",
                                 b'{"resourceType":"Patient","resourceType":"Patient"}'])
def test_malformed_json_is_400(client: Any, seeded: str, raw: bytes) -> None:
    before = versions(client)
    for method, url in (("POST", "/fhir/Patient"), ("PUT", f"/fhir/Patient/{seeded}")):
        response = client.request(method, url, content=raw, headers=FHIR_JSON)
        outcome(response, 400, ("structure", "invalid"))
    assert versions(client) == before


@pytest.mark.parametrize("raw", [b"[]", b'"Patient"', b"42", b"null", b"true",
                                 b'[{"resourceType":"Patient"}]'])
def test_non_object_json_is_400(client: Any, raw: bytes) -> None:
    before = versions(client)
    outcome(client.post("/fhir/Patient", content=raw, headers=FHIR_JSON), 400,
            ("structure", "invalid"))
    assert versions(client) == before


@pytest.mark.parametrize(("resource", "expression"), [
    ({"resourceType": "Observation", "status": "bogus", "code": {"text": "x"}},
     "Observation.status"),
    ({"resourceType": "Patient", "gender": "banana"}, "Patient.gender"),
    ({"resourceType": "Patient", "favouriteColour": "blue"}, "Patient.favouriteColour"),
    ({"resourceType": "Patient", "birthDate": "1970-13-45"}, "Patient.birthDate"),
    ({"resourceType": "Observation", "code": {"text": "x"}}, "Observation.status"),
    ({"resourceType": "Patient", "name": [{"family": ["a", "b"]}]}, "Patient.name[0].family"),
])
def test_invalid_resource_is_422_naming_the_element(
    client: Any, seeded: str, resource: dict[str, Any], expression: str
) -> None:
    before = versions(client)
    rtype = resource["resourceType"]
    body = outcome(client.post(f"/fhir/{rtype}", json=resource, headers=FHIR_JSON), 422)
    assert body["issue"][0]["code"] in ("value", "structure", "required", "code-invalid",
                                        "invalid", "invariant")
    assert any(e == expression or e.startswith(expression) for e in expressions(body)), body
    if rtype == "Patient":
        body = outcome(client.put(f"/fhir/Patient/{seeded}", json={**resource, "id": seeded},
                                  headers=FHIR_JSON), 422)
        assert any(e.startswith(expression) for e in expressions(body)), body
    assert versions(client) == before


def test_resource_type_mismatch_is_400(client: Any, seeded: str) -> None:
    before = versions(client)
    body = outcome(client.post("/fhir/Patient", json={"resourceType": "Observation",
                                                      "status": "final", "code": {"text": "x"}},
                               headers=FHIR_JSON), 400, "invalid")
    assert expressions(body)
    outcome(client.put(f"/fhir/Observation/{seeded}",
                       json={"resourceType": "Patient", "id": seeded}, headers=FHIR_JSON), 400)
    assert versions(client) == before


def test_put_id_mismatch_is_400(client: Any, seeded: str) -> None:
    before = versions(client)
    body = outcome(client.put(f"/fhir/Patient/{seeded}",
                              json={"resourceType": "Patient", "id": "other"},
                              headers=FHIR_JSON), 400, "invalid")
    assert "Patient.id" in expressions(body)
    body = outcome(client.put(f"/fhir/Patient/{seeded}", json={"resourceType": "Patient"},
                              headers=FHIR_JSON), 400)
    assert "Patient.id" in expressions(body)
    assert versions(client) == before


def test_invalid_id_in_url_is_refused(client: Any) -> None:
    before = versions(client)
    long_id = "x" * 65
    response = client.put(f"/fhir/Patient/{long_id}",
                          json={"resourceType": "Patient", "id": long_id}, headers=FHIR_JSON)
    assert response.status_code in (400, 422)
    outcome(response, response.status_code)
    assert versions(client) == before


# -- routing ----------------------------------------------------------------------------------


def test_unknown_resource_type_is_404(client: Any) -> None:
    outcome(client.get("/fhir/Foo"), 404, ("not-supported", "not-found"))
    outcome(client.post("/fhir/Foo", json={"resourceType": "Foo"}, headers=FHIR_JSON), 404)
    outcome(client.get("/fhir/Foo/1"), 404)


@pytest.mark.parametrize("path", ["/fhir/Patient/1/2", "/fhir/Patient/1/_history/1/x",
                                  "/fhir/Patient/1/foo/bar", "/fhir/metadata/x",
                                  "/fhir/$nonsense", "/fhir/Patient/$nonsense"])
def test_unknown_path_is_404(client: Any, path: str) -> None:
    outcome(client.get(path), 404)


def test_unknown_path_outside_fhir_is_404(client: Any) -> None:
    assert client.get("/nothing-here").status_code == 404


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/fhir/Patient/p1", {"GET", "PUT", "DELETE"}),
    ("POST", "/fhir/Patient/p1", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/fhir/metadata", {"GET"}),
    ("PUT", "/fhir/metadata", {"GET"}),
    ("DELETE", "/fhir/Patient/p1/_history", {"GET"}),
    ("PUT", "/fhir", {"GET", "POST"}),
    ("POST", "/fhir/AuditEvent", {"GET"}),
    ("PUT", "/fhir/AuditEvent/x", {"GET"}),
    ("DELETE", "/fhir/AuditEvent/x", {"GET"}),
])
def test_wrong_method_is_405_with_allow(
    client: Any, seeded: str, method: str, path: str, allowed: set[str]
) -> None:
    before = versions(client)
    body = b'{"resourceType":"Patient","id":"p1"}'
    if "AuditEvent" in path:
        body = b'{"resourceType":"AuditEvent","id":"x"}'
    response = client.request(method, path, content=body, headers=FHIR_JSON)
    outcome(response, 405, "not-supported")
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow, allow
    assert method not in allow
    assert versions(client) == before


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/fhir+xml",
                                   "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client: Any, seeded: str, ctype: str) -> None:
    before = versions(client)
    raw = json.dumps({"resourceType": "Patient", "id": seeded})
    outcome(client.post("/fhir/Patient", content=raw, headers={"Content-Type": ctype}), 415,
            "not-supported")
    outcome(client.put(f"/fhir/Patient/{seeded}", content=raw,
                       headers={"Content-Type": ctype}), 415)
    assert versions(client) == before


def test_missing_content_type_is_415(client: Any) -> None:
    raw = json.dumps({"resourceType": "Patient"}).encode()
    response = client.post("/fhir/Patient", content=raw, headers={"Content-Type": ""})
    outcome(response, 415)


@pytest.mark.parametrize("accept", ["application/xml", "application/fhir+xml", "text/html"])
def test_xml_accept_is_406(client: Any, seeded: str, accept: str) -> None:
    outcome(client.get(f"/fhir/Patient/{seeded}", headers={"Accept": accept}), 406)
    outcome(client.get("/fhir/metadata", headers={"Accept": accept}), 406)
    outcome(client.get(f"/fhir/Patient/{seeded}?_format=xml"), 406)


def test_oversized_body_is_413(
    database_url: str, engine: Engine, tmp_path: Path, bearer_header: Any
) -> None:
    from fastapi.testclient import TestClient

    from ehr.app import create_app

    small = Settings(database_url=database_url, var_dir=tmp_path / "var", max_body_bytes=1000)
    app = create_app(small, engine)
    with TestClient(app) as client:
        client.headers.update(
            bearer_header(app, subject="t", kind="client", scopes="system/*.cruds"))
        before = versions(client)
        big = {"resourceType": "Patient", "name": [{"text": "x" * 2000}]}
        outcome(client.post("/fhir/Patient", json=big, headers=FHIR_JSON), 413, "too-costly")

        def chunks() -> Iterator[bytes]:
            yield b'{"resourceType":"Patient","name":[{"text":"'
            for _ in range(20):
                yield b"y" * 100
            yield b'"}]}'

        chunked = client.post("/fhir/Patient", content=chunks(), headers=FHIR_JSON)
        outcome(chunked, 413)
        assert versions(client) == before
        ok = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        assert ok.status_code == 201


# -- search parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["_count=abc", "_count=-1", "birthdate=xx2020-01-01",
                                   "birthdate=2020-13-45", "_lastUpdated=yesterday",
                                   "_sort=nonexistent", "_cursor=garbage",
                                   "_include=Nothing:nothing", "_summary=bogus"])
def test_invalid_search_values_are_400(client: Any, query: str) -> None:
    body = outcome(client.get(f"/fhir/Patient?{query}"), 400)
    assert body["issue"][0]["code"] in ("invalid", "value", "not-supported", "processing")


def test_unknown_search_param_is_a_warning_or_strict_400(client: Any, seeded: str) -> None:
    lenient = client.get("/fhir/Patient?favourite-colour=blue")
    assert lenient.status_code == 200
    bundle = lenient.json()
    outcomes = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issue = outcomes[0]["resource"]["issue"][0]
    assert issue["severity"] == "warning"
    assert "favourite-colour" in json.dumps(outcomes[0]["resource"])
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert [e["resource"]["id"] for e in matches] == [seeded]
    strict = client.get("/fhir/Patient?favourite-colour=blue",
                        headers={"Prefer": "handling=strict"})
    outcome(strict, 400)


def test_audit_event_is_read_only(client: Any) -> None:
    before = versions(client)
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"},
             "recorded": "2020-01-01T00:00:00Z", "agent": [{"requestor": True}],
             "source": {"observer": {"display": "x"}}}
    response = client.post("/fhir/AuditEvent", json=event, headers=FHIR_JSON)
    outcome(response, 405)
    assert "POST" not in response.headers["Allow"]
    assert versions(client) == before
    assert client.get("/fhir/AuditEvent").status_code == 200


def test_conditional_requests_need_criteria(client: Any) -> None:
    before = versions(client)
    outcome(client.put("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON), 400)
    outcome(client.delete("/fhir/Patient"), 400)
    bad = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                      headers={**FHIR_JSON, "If-None-Exist": "unknown-param=1"})
    outcome(bad, 400)
    assert versions(client) == before


def test_bad_if_match_is_400(client: Any, seeded: str) -> None:
    before = versions(client)
    response = client.put(f"/fhir/Patient/{seeded}", json={"resourceType": "Patient",
                                                           "id": seeded},
                          headers={**FHIR_JSON, "If-Match": "not-a-version"})
    outcome(response, 400)
    assert versions(client) == before


# -- never a 500 ------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}"


def _garbage_bodies() -> list[bytes]:
    rng = random.Random(20240601)
    bodies = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(8)]
    bodies += [
        _nested(100_000),
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"resourceType":"Patient","id":"x","birthDate":1e999999}',
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueQuantity":{"value":' + b"9" * 5000 + b"}}",
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueInteger":NaN}',
        b'{"resourceType":"Patient","id":12}',
        b'{"resourceType":"Patient","id":{"a":1}}',
        b'{"resourceType":"Patient","id":["p1"]}',
        b'{"resourceType":null}',
        b'{"resourceType":7}',
        b'{"resourceType":["Patient"]}',
        b'{"resourceType":""}',
        b'{}',
        b'{"resourceType":"Patient","name":{"family":"x"}}',
        b'{"resourceType":"Patient","meta":[]}',
        b'{"resourceType":"Patient","meta":{"tag":{"code":"x"}}}',
        b'{"resourceType":"Patient","meta":{"versionId":5,"lastUpdated":"x"}}',
        b'{"resourceType":"Patient","identifier":[null]}',
        b'{"resourceType":"Patient","text":"hello"}',
        b'{"resourceType":"Patient","contained":[{"resourceType":"Nope"}]}',
        b'{"resourceType":"Patient","contained":[42]}',
        b'{"resourceType":"Patient","managingOrganization":{"reference":42}}',
        b'{"resourceType":"Patient","managingOrganization":{"reference":"::::"}}',
        b'{"resourceType":"Patient","_birthDate":{"extension":"x"}}',
        b'{"resourceType":"Patient","birthDate":"\\u0000"}',
        b'{"resourceType":"Patient","name":[{"family":"\xed\xa0\x80"}]}',
        b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}',
        b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}',
        b'{"resourceType":"Patient","name":[{"family":"a\\u0001b"}]}',
        b'{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"\\u0000"}]}',
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueInteger":99999999999999999999}',
        b'{"resourceType":"Bundle","type":"transaction","entry":{"a":1}}',
        b'{"resourceType":"Bundle","type":"transaction","entry":[null, 1, "x"]}',
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT",'
        b'"url":"Patient/../../x"},"resource":{"resourceType":"Patient"}}]}',
        b'{"resourceType":"Parameters","parameter":"x"}',
        b'{"resourceType":"Parameters","parameter":[{"name":"resource","resource":7}]}',
    ]
    return bodies


# Odd but legal, or refused inside a 200 batch-response: these only must not break the server.
_TOLERATED = [
    b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
    b'"valueQuantity":{"value":1e400}}',
    b'{"resourceType":"Patient","id":null}',
    b'{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET",'
    b'"url":"Patient?_count=abc"}}]}',
]


_ENDPOINTS = [
    ("POST", "/fhir/Patient"),
    ("PUT", "/fhir/Patient/p1"),
    ("PUT", "/fhir/Patient?identifier=a|b"),
    ("POST", "/fhir/Observation"),
    ("POST", "/fhir"),
    ("POST", "/fhir/Patient/$validate"),
    ("POST", "/fhir/Patient/p1/$validate"),
]


@pytest.fixture
def raw_client(app: Any, bearer_header: Any) -> Any:
    """A client that returns a server error as a response instead of raising it."""
    from fastapi.testclient import TestClient

    client = TestClient(app, raise_server_exceptions=False)
    client.headers.update({"Accept": "application/fhir+json"})
    client.headers.update(bearer_header(app, subject="t", kind="client", scopes="system/*.cruds"))
    return client


def _problem(response: Any, *, bundle_ok: bool = False) -> str | None:
    """Why a response to garbage is unacceptable, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:200]}"
    try:
        kind = response.json().get("resourceType")
    except ValueError:
        return f"{response.status_code} without a JSON body"
    if response.status_code >= 400 and kind != "OperationOutcome":
        return f"{response.status_code} with a {kind}"
    if response.status_code < 400 and kind != ("Bundle" if bundle_ok else "OperationOutcome"):
        return f"{response.status_code} with a {kind}"
    return None


def test_garbage_bodies_never_give_500(raw_client: Any, seeded: str) -> None:
    before = versions(raw_client)
    problems: list[tuple[str, str, bytes, str]] = []
    for raw in _garbage_bodies():
        for method, path in _ENDPOINTS:
            response = raw_client.request(method, path, content=raw, headers=FHIR_JSON)
            problem = _problem(response, bundle_ok=path == "/fhir")
            if problem is None and response.status_code < 300 and not path.endswith("$validate"):
                problem = f"garbage accepted: {response.status_code}"
            if problem:
                problems.append((method, path, raw[:80], problem))
    assert not problems, "\n".join(map(repr, problems))
    assert versions(raw_client) == before
    for raw in _TOLERATED:
        for method, path in _ENDPOINTS:
            response = raw_client.request(method, path, content=raw, headers=FHIR_JSON)
            assert response.status_code < 500, (method, path, raw, response.text[:300])


@pytest.mark.parametrize("query", [
    "_count=99999999999999999999999", "_count=1e3", "_count=", "birthdate=ge",
    "birthdate=2020-01-01T25:00", "birthdate=9999999-01-01", "_id=", "name:exact=",
    "name:nosuchmodifier=x", "identifier=|||", "identifier=%00", "name=%00", "%00=1",
    "_since=%00", "_sort=-", "_sort=,",
    "_include=*", "_include=Patient:nonexistent", "_revinclude=:", "_elements=,,,",
    "general-practitioner.name=x", "organization.nope=x", "_has=x",
    "_has:Observation:patient:nope=x", "_has:Foo:bar:baz=1", "_lastUpdated=gt", "_total=maybe",
    "_summary=count&_summary=true", "_cursor=" + "9" * 400, "name=" + "x" * 5000,
    "gender:missing=perhaps", "link.identifier.value=x", "birthdate=gt" + "9" * 30,
    "_count=" + "9" * 5000,
])
def test_garbage_queries_never_give_500(raw_client: Any, seeded: str, query: str) -> None:
    problems = []
    for path in ("/fhir/Patient", "/fhir/Patient/_history", "/fhir/_history", "/fhir"):
        problem = _problem(raw_client.get(f"{path}?{query}"), bundle_ok=True)
        if problem:
            problems.append((path, problem))
    assert not problems, "\n".join(map(repr, problems))


def test_garbage_form_search_never_gives_500(raw_client: Any, seeded: str) -> None:
    problems = []
    for raw in [b"\xff\xfe", b"name=%ZZ", b"&&&==", b"_count=abc", b"name=" + b"a" * 3000,
                b"name=%00", b"_count=" + b"9" * 5000]:
        response = raw_client.post("/fhir/Patient/_search", content=raw,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        problem = _problem(response, bundle_ok=True)
        if problem:
            problems.append((raw[:40], problem))
    assert not problems, "\n".join(map(repr, problems))
