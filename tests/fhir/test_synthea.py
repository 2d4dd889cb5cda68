"""The four Synthea patient bundles, posted as transactions on SQLite and PostgreSQL.

Synthea points at Organizations, Practitioners and Locations through conditional references
(``Organization?identifier=...``) that a fresh server cannot resolve: each bundle must then fail
whole. Once those targets exist (derived here from the bundle itself), each bundle loads whole,
with every placeholder and conditional reference rewritten to a stored ``Type/id``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.store.tables import ResourceRow

pytestmark = pytest.mark.slow

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYNTHEA_FILES = ["0f2074a0-4173-1a32-988f-5316d7f1cbbe.json",
                 "19625ee6-1a94-1a6a-ca95-40c4efbbdfc7.json",
                 "6c8f3e83-c351-ed33-c38d-6be101c275d2.json",
                 "e660ef94-5bfc-04d6-c321-c5baaf41cfb8.json"]
_REFERENCE = re.compile(r'"reference":\s*"([^"]+)"')


def conditional_references(raw: str) -> set[str]:
    return {r for r in _REFERENCE.findall(raw) if "?" in r}


def stored(engine: Engine) -> list[tuple[str, str, str]]:
    r = ResourceRow.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.rtype, r.c.rid, r.c.content)
                            .where(r.c.deleted == sa.false())).all()
    return [(str(t), str(i), str(c)) for t, i, c in rows]


def target_for(reference: str) -> dict[str, Any]:
    """A minimal resource that a conditional ``Type?identifier=system|value`` matches."""
    rtype, query = reference.split("?", 1)
    params = dict(parse_qsl(query))
    system, _, value = params["identifier"].partition("|")
    resource: dict[str, Any] = {"resourceType": rtype,
                                "identifier": [{"system": system, "value": value}]}
    if rtype in ("Organization", "Location"):
        resource["name"] = f"{rtype} {value}"
    return resource


@pytest.fixture(params=SYNTHEA_FILES)
def synthea(request: pytest.FixtureRequest, fhir_data: Path) -> tuple[str, str]:
    path = fhir_data / "synthea" / str(request.param)
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path.name, path.read_text(encoding="utf-8")


def test_synthea_bundle_fails_whole_without_its_referenced_resources(
    client: Any, engine: Engine, synthea: tuple[str, str]
) -> None:
    _name, raw = synthea
    wanted = conditional_references(raw)
    assert wanted, "Synthea bundles use conditional references"
    response = client.post("/fhir", content=raw.encode(), headers=FHIR_JSON)
    assert response.status_code == 404, response.text[:500]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    named = {ref for issue in outcome["issue"] for ref in wanted
             if f"'{ref}'" in issue["diagnostics"]}
    assert named == wanted
    for issue in outcome["issue"]:
        assert issue["code"] == "not-found"
        assert all(re.fullmatch(r"Bundle\.entry\[\d+\]\.resource\..+", e)
                   for e in issue["expression"])
    assert {ref.split("?")[0] for ref in named} <= {"Organization", "Practitioner", "Location"}
    assert stored(engine) == []


def test_synthea_bundle_loads_whole_once_its_references_exist(
    client: Any, engine: Engine, synthea: tuple[str, str]
) -> None:
    name, raw = synthea
    bundle = json.loads(raw)
    targets = sorted(conditional_references(raw))
    seed = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": target_for(ref), "request": {"method": "POST", "url": ref.split("?")[0]}}
        for ref in targets]}
    seeded = client.post("/fhir", json=seed, headers=FHIR_JSON)
    assert seeded.status_code == 200, seeded.text[:500]
    assert all(e["response"]["status"] == "201 Created" for e in seeded.json()["entry"])
    seeded_counts = Counter(ref.split("?")[0] for ref in targets)

    started = time.perf_counter()
    response = client.post("/fhir", content=raw.encode(), headers=FHIR_JSON)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:2000]
    print(f"\n{name}: {len(bundle['entry'])} entries in {elapsed:.2f}s on "
          f"{engine.dialect.name}")

    result = response.json()
    assert result["type"] == "transaction-response"
    assert len(result["entry"]) == len(bundle["entry"])
    assert all(e["response"]["status"] == "201 Created" for e in result["entry"])

    rows = stored(engine)
    expected = Counter(e["resource"]["resourceType"] for e in bundle["entry"]) + seeded_counts
    assert Counter(rtype for rtype, _, _ in rows) == expected

    # Every reference is now Type/id (or a contained #id) and points at a stored resource.
    # (urn:uuid: stays legitimately in identifier values such as DocumentReference's.)
    known = {f"{rtype}/{rid}" for rtype, rid, _ in rows}
    references = [r for _, _, content in rows for r in _REFERENCE.findall(content)]
    assert not [r for r in references if r.startswith("urn:") or "?" in r]
    dangling = [r for r in references if not r.startswith("#") and r not in known]
    assert dangling == []
    assert len(references) >= raw.count('"reference"')
