"""History over HTTP: instance, type and system level, paging with ``_count`` and ``_since``, and
the request/response of each entry. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlsplit

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def history(client: Any, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    return dict(body)


def link(body: dict[str, Any], relation: str) -> str | None:
    return next((str(x["url"]) for x in body.get("link", []) if x["relation"] == relation), None)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def all_pages(client: Any, url: str) -> list[dict[str, Any]]:
    pages = [history(client, url)]
    while (nxt := link(pages[-1], "next")) and len(pages) < 100:
        pages.append(history(client, relative(nxt)))
    return pages


def versions_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, version) per entry, from the ETag (deletions have no resource)."""
    out = []
    for entry in body.get("entry", []):
        rid = entry["fullUrl"].rsplit("/", 1)[1]
        out.append((rid, entry["response"]["etag"].removeprefix('W/"').rstrip('"')))
    return out


def lifecycle(client: Any, family: str) -> str:
    """create, update, delete one Patient: three versions."""
    created = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                 "name": [{"family": family}]},
                          headers=FHIR_JSON)
    assert created.status_code == 201
    rid = created.json()["id"]
    updated = client.put(f"/fhir/Patient/{rid}",
                         json={"resourceType": "Patient", "id": rid,
                               "name": [{"family": family + "2"}]}, headers=FHIR_JSON)
    assert updated.status_code == 200
    assert client.delete(f"/fhir/Patient/{rid}").status_code in (200, 204)
    return str(rid)


def test_instance_history_entries(client: Any) -> None:
    rid = lifecycle(client, "Hist")
    body = history(client, f"/fhir/Patient/{rid}/_history")
    assert body["total"] == 3
    entries = body["entry"]
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["410", "200", "201"] or \
        [e["response"]["status"].split()[0] for e in entries] == ["204", "200", "201"]
    assert entries[1]["request"]["url"] == f"Patient/{rid}"
    assert entries[2]["request"]["url"] == "Patient"
    assert entries[1]["resource"]["name"][0]["family"] == "Hist2"
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert entries[2]["resource"]["meta"]["versionId"] == "1"
    assert "resource" not in entries[0]
    assert [v for _, v in versions_of(body)] == ["3", "2", "1"]
    for entry in entries:
        assert entry["fullUrl"].endswith(f"/fhir/Patient/{rid}")
        assert "lastModified" in entry["response"]


def test_put_create_shows_as_put(client: Any) -> None:
    response = client.put("/fhir/Patient/client-id", json={"resourceType": "Patient",
                                                           "id": "client-id"},
                          headers=FHIR_JSON)
    assert response.status_code == 201
    entry = history(client, "/fhir/Patient/client-id/_history")["entry"][0]
    assert entry["response"]["status"].startswith("201")
    assert entry["request"]["method"] in ("PUT", "POST")


def test_type_and_system_history(client: Any) -> None:
    first = lifecycle(client, "A")
    second = lifecycle(client, "B")
    obs = client.post("/fhir/Observation", json={"resourceType": "Observation",
                                                 "status": "final", "code": {"text": "x"}},
                      headers=FHIR_JSON).json()["id"]
    patients = history(client, "/fhir/Patient/_history?_count=100")
    assert patients["total"] == 6
    assert {rid for rid, _ in versions_of(patients)} == {first, second}
    system = history(client, "/fhir/_history?_count=100")
    assert system["total"] == 7
    assert versions_of(system)[0] == (obs, "1")  # newest first
    observations = history(client, "/fhir/Observation/_history")
    assert versions_of(observations) == [(obs, "1")]


def test_history_paging_with_count(client: Any) -> None:
    for i in range(4):
        lifecycle(client, f"P{i}")  # 12 versions
    pages = all_pages(client, "/fhir/Patient/_history?_count=5")
    assert [len(p.get("entry", [])) for p in pages] == [5, 5, 2]
    seen = [v for page in pages for v in versions_of(page)]
    assert len(seen) == len(set(seen)) == 12
    for page in pages:
        assert page["total"] == 12
    prev = link(pages[1], "previous")
    assert prev is not None
    assert versions_of(history(client, relative(prev))) == versions_of(pages[0])


def test_history_paging_is_stable_under_new_writes(client: Any) -> None:
    for i in range(3):
        lifecycle(client, f"S{i}")
    page = history(client, "/fhir/_history?_count=4")
    seen = versions_of(page)
    while nxt := link(page, "next"):
        lifecycle(client, "Noise")  # newer versions must not shift the older pages
        page = history(client, relative(nxt))
        seen.extend(versions_of(page))
    assert len(seen) == len(set(seen)) == 9


def test_history_since(client: Any) -> None:
    old = lifecycle(client, "Old")
    time.sleep(0.01)
    marker = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                         headers=FHIR_JSON).json()
    since = marker["meta"]["lastUpdated"]
    time.sleep(0.01)
    new = lifecycle(client, "New")
    body = history(client, f"/fhir/Patient/_history?_since={quote(since)}&_count=50")
    rids = {rid for rid, _ in versions_of(body)}
    assert old not in rids
    assert new in rids and marker["id"] in rids
    assert body["total"] == 4
    system = history(client, f"/fhir/_history?_since={quote(since)}")
    assert system["total"] == 4
    instance = history(client, f"/fhir/Patient/{old}/_history?_since={quote(since)}")
    assert instance["total"] == 0 and not instance.get("entry")


def test_history_of_unknown_is_404_and_bad_params_400(client: Any) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404
    for query in ("_count=x", "_since=notadate", "_cursor=zz"):
        response = client.get(f"/fhir/_history?{query}")
        assert response.status_code == 400, query
        assert response.json()["resourceType"] == "OperationOutcome"


def test_history_entries_are_full_versions(client: Any) -> None:
    rid = lifecycle(client, "Full")
    body = history(client, f"/fhir/Patient/{rid}/_history")
    for entry in body["entry"][1:]:
        version = entry["resource"]["meta"]["versionId"]
        vread = client.get(f"/fhir/Patient/{rid}/_history/{version}").json()
        assert vread == entry["resource"]
