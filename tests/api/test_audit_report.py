"""``GET /api/audit/report``: CSV and NDJSON exports of the audit trail (ONC (d)(3))."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from ehr_testing import sealed
from sqlalchemy import Engine

from ehr.api.audit_report import FIELDS
from ehr.audit import repository
from ehr.audit.repository import SORT_FIELDS, AuditFilter
from ehr.db import unit_of_work

FHIR_JSON = {"Content-Type": "application/fhir+json"}
REPORT = "/api/audit/report"


@pytest.fixture
def users(client: Any, app: Any, bearer_header: Any) -> dict[str, dict[str, str]]:
    """Activity by a system client and users of several roles; their headers by name."""
    def user(name: str, role: str, scopes: str) -> dict[str, str]:
        return bearer_header(app, subject=name, kind="user", scopes=scopes, roles=(role,))

    headers = {"doc": user("doc", "physician", "user/*.cruds"),
               "thera": user("thera", "therapist", "user/*.rs"),
               "auditor": user("auditor", "compliance", "user/AuditEvent.rs"),
               "admin": user("root", "admin", "openid")}
    ids = []
    for family in ("Alpha", "Beta"):
        created = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                      "name": [{"family": family}]},
                              headers={**FHIR_JSON, "User-Agent": f"agent-{family}"})
        assert created.status_code == 201
        ids.append(created.json()["id"])
    client.get(f"/fhir/Patient/{ids[0]}")
    client.get(f"/fhir/Patient?_id={ids[1]}")
    client.get("/fhir/Patient/missing")
    created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers={**FHIR_JSON, **headers["doc"]})
    assert created.status_code == 201
    assert client.get("/fhir/AuditEvent", headers=headers["thera"]).status_code == 403
    headers["patients"] = dict(enumerate(ids))  # type: ignore[assignment]
    return headers


def _ndjson(client: Any, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"{REPORT}?format=ndjson{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def _count(engine: Engine) -> int:
    with unit_of_work(sealed(engine), write=False) as session:
        return repository.count(session, AuditFilter())


def test_csv_has_a_header_and_every_record(client: Any, engine: Engine,
                                           users: dict[str, Any]) -> None:
    before = _count(engine)
    response = client.get(REPORT, headers=users["auditor"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == FIELDS
    body = rows[1:]
    # Every record, plus the export's own record, committed before the stream began.
    assert len(body) == before + 1
    assert [int(r[0]) for r in body] == list(range(1, before + 2))
    last = dict(zip(FIELDS, body[-1], strict=True))
    assert (last["interaction"], last["actor"], last["action"]) == ("audit-export", "auditor",
                                                                   "E")
    agents = {r[FIELDS.index("user_agent")] for r in body}
    assert {"agent-Alpha", "agent-Beta"} <= agents


def test_ndjson_objects_match_the_records(client: Any, engine: Engine,
                                          users: dict[str, Any]) -> None:
    lines = _ndjson(client, users["auditor"])
    assert all(tuple(obj) == FIELDS for obj in lines)
    with unit_of_work(engine, write=False) as session:
        for obj in lines:
            row = repository.get_record(session, obj["seq"])
            assert row is not None
            assert (obj["hash"], obj["interaction"], obj["status"], obj["actor"]) == (
                row.hash, row.interaction, row.status, row.actor_id)
    alpha = users["patients"][0]
    assert any(o["patients"] == [alpha] and o["interaction"] == "read" for o in lines)


def _value(obj: dict[str, Any], name: str) -> Any:
    value = obj[name]
    if name == "protected":
        return bool(value)  # the report lists the labels; the sort uses "any label"
    if isinstance(value, list):
        return min(value) if value else None  # patients sort by their smallest id
    return value


@pytest.mark.parametrize("sort", ["-time", "actor,-seq", "interaction,resource_type,-status",
                                  "source_ip,-user_agent", "patients,outcome",
                                  "resource_id,-resource_version", "request_id",
                                  "category,purpose,protected,actor_kind,actor_display"])
def test_sorting_by_several_fields(client: Any, users: dict[str, Any], sort: str) -> None:
    lines = _ndjson(client, users["auditor"], f"&sort={sort}")
    expected = sorted(lines, key=lambda o: o["seq"])
    # Stable sorts from the last key to the first; empty values last in both directions.
    for part in reversed(sort.split(",")):
        name, descending = part.lstrip("-"), part.startswith("-")
        present = [o for o in expected if _value(o, name) is not None]
        missing = [o for o in expected if _value(o, name) is None]
        present.sort(key=lambda o, n=name: _value(o, n), reverse=descending)
        expected = present + missing
    assert [o["seq"] for o in lines] == [o["seq"] for o in expected]


def test_every_field_is_sortable(client: Any, users: dict[str, Any]) -> None:
    for name in SORT_FIELDS:
        response = client.get(f"{REPORT}?sort=-{name}", headers=users["auditor"])
        assert response.status_code == 200, (name, response.text)


def test_range_and_filters(client: Any, users: dict[str, Any]) -> None:
    auditor = users["auditor"]
    everything = _ndjson(client, auditor)
    middle = everything[len(everything) // 2]["time"]
    later = _ndjson(client, auditor, f"&from={middle}")
    assert later and all(o["time"] >= middle for o in later)
    earlier = _ndjson(client, auditor, f"&to={middle}")
    # "to" includes the whole instant it names.
    assert [o["seq"] for o in earlier] == [o["seq"] for o in everything if o["time"] <= middle]
    assert _ndjson(client, auditor, "&from=2000&to=2000-12") == []
    day = _ndjson(client, auditor, f"&from={middle[:10]}&to={middle[:10]}")
    assert {o["seq"] for o in everything} <= {o["seq"] for o in day}

    by_doc = _ndjson(client, auditor, "&user=doc")
    assert [(o["actor"], o["interaction"]) for o in by_doc] == [("doc", "create")]
    beta = users["patients"][1]
    about_beta = _ndjson(client, auditor, f"&patient=Patient/{beta}")
    assert {o["interaction"] for o in about_beta} == {"create", "search-type"}
    creates = _ndjson(client, auditor, "&action=C")
    assert {o["interaction"] for o in creates} == {"create"} and len(creates) == 3
    reads = _ndjson(client, auditor, "&interaction=read")
    assert {o["interaction"] for o in reads} == {"read"}
    denied = _ndjson(client, auditor, "&outcome=denied")
    assert [(o["actor"], o["status"]) for o in denied] == [("thera", 403)]
    failed = _ndjson(client, auditor, "&outcome=4")
    assert sorted(o["status"] for o in failed) == [403, 404]
    security = _ndjson(client, auditor, "&type=security")
    assert {o["category"] for o in security} == {"security"}
    exports = _ndjson(client, auditor, "&type=110101")
    assert exports and {o["interaction"] for o in exports} == {"audit-export"}


def test_bad_requests_are_clear_400s(client: Any, users: dict[str, Any]) -> None:
    auditor = users["auditor"]
    for query, word in (("sort=favourite", "favourite"), ("sort=time,-nope", "nope"),
                        ("from=yesterday", "from"), ("to=2024-02-30", "to"),
                        ("format=xml", "format"), ("outcome=maybe", "outcome"),
                        ("action=Z", "action"), ("type=999", "type"),
                        ("patient=Patient/", "patient")):
        response = client.get(f"{REPORT}?{query}", headers=auditor)
        assert response.status_code == 400, query
        body = response.json()
        assert word in body["detail"], (query, body)
        assert body["issues"][0]["code"] == "invalid"


def test_permissions(client: Any, engine: Engine, users: dict[str, Any]) -> None:
    anonymous = client.get(REPORT, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    before = _count(engine)
    refused = client.get(REPORT, headers=users["thera"])
    assert refused.status_code == 403 and refused.json()["detail"]
    with unit_of_work(sealed(engine), write=False) as session:
        last = repository.get_record(session, before + 1)
    assert last is not None
    assert (last.interaction, last.category, last.status) == ("audit-export", "security", 403)
    assert client.get(REPORT, headers=users["doc"]).status_code == 403
    admin = _ndjson(client, users["admin"])
    assert admin and {o["category"] for o in admin} == {"security"}
    assert {"thera"} <= {o["actor"] for o in admin}


def test_openapi_documents_the_report(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][REPORT]["get"]
    assert operation["summary"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"from", "to", "sort", "format", "user", "patient", "action", "interaction",
            "outcome", "type"} <= set(params)
    assert all(p.get("description") for p in params.values())
    assert {"text/csv; charset=utf-8", "application/x-ndjson"} <= set(
        operation["responses"]["200"]["content"])
    assert {"400", "401", "403"} <= set(operation["responses"])


def test_csv_cells_never_run_as_formulas(client: Any, users: dict[str, Any]) -> None:
    client.get("/fhir/Patient/x", headers={"User-Agent": "=HYPERLINK(\"http://evil\")"})
    response = client.get(f"{REPORT}?sort=-seq", headers=users["auditor"])
    rows = list(csv.DictReader(io.StringIO(response.text)))
    agents = [r["user_agent"] for r in rows if "HYPERLINK" in r["user_agent"]]
    assert agents and all(a.startswith("'=") for a in agents)
