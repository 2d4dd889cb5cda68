"""``ehr load``'s loader on SQLite and PostgreSQL: streaming NDJSON in committed batches with
progress, idempotent reloads, bad lines named by number, gzip, and JSON Bundles/resources."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.config import Settings
from ehr.context import RequestContext
from ehr.errors import EhrError
from ehr.fhir.loader import LoadFailed, LoadReport, load_file
from ehr.fhir.pipeline import Pipeline
from ehr.store.tables import ResourceRow


def observation(i: int, with_id: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/p{i % 7}"},
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
    }
    if with_id:
        out["id"] = f"obs-{i}"
    return out


def write_ndjson(path: Path, resources: list[Any], opener: Any = open) -> Path:
    with opener(path, "wt", encoding="utf-8") as out:
        for resource in resources:
            out.write(resource if isinstance(resource, str) else json.dumps(resource))
            out.write("\n")
    return path


def count(engine: Engine, rtype: str | None = None) -> int:
    r = ResourceRow.__table__  # type: ignore[attr-defined]
    query = sa.select(sa.func.count()).select_from(r).where(r.c.deleted == sa.false())
    if rtype:
        query = query.where(r.c.rtype == rtype)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def load(engine: Engine, settings: Settings, path: Path, **kwargs: Any) -> LoadReport:
    return load_file(engine, Pipeline(settings), RequestContext(), path, **kwargs)


def test_ndjson_streams_in_batches_with_progress(engine: Engine, settings: Settings,
                                                 tmp_path: Path) -> None:
    total = 2_500
    path = write_ndjson(tmp_path / "obs.ndjson",
                        [observation(i, with_id=i % 2 == 0) for i in range(total)])
    calls: list[tuple[int, int]] = []
    report = load(engine, settings, path, batch_size=500,
                  progress=lambda done, size: calls.append((done, size)))
    assert (report.created, report.updated, report.failed) == (total, 0, 0)
    assert count(engine, "Observation") == total
    assert len(calls) == math.ceil(total / 500)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (total, path.stat().st_size)
    assert calls[0] == (500, calls[0][1]) and 0 < calls[0][1] < path.stat().st_size


def test_reloading_resources_with_ids_is_idempotent(engine: Engine, settings: Settings,
                                                    tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "obs.ndjson", [observation(i) for i in range(300)])
    first = load(engine, settings, path, batch_size=100)
    second = load(engine, settings, path, batch_size=100)
    assert (first.created, first.updated) == (300, 0)
    assert (second.created, second.updated) == (0, 300)
    assert count(engine, "Observation") == 300


def test_bad_line_stops_with_its_number_and_keeps_committed_batches(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    lines: list[Any] = [observation(i) for i in range(250)]
    lines[230] = '{"resourceType": "Observation", "status": '
    path = write_ndjson(tmp_path / "broken.ndjson", lines)
    with pytest.raises(LoadFailed) as caught:
        load(engine, settings, path, batch_size=100)
    message = str(caught.value)
    assert "broken.ndjson" in message and "line 231" in message
    assert "line 200" in message  # the last line committed
    assert caught.value.problem.where == "line 231"
    assert caught.value.report.created == 200
    assert count(engine) == 200


def test_invalid_resource_is_reported_by_line(engine: Engine, settings: Settings,
                                              tmp_path: Path) -> None:
    lines: list[Any] = [observation(i) for i in range(5)]
    lines.insert(3, {"resourceType": "Observation", "id": "no-status", "code": {"text": "x"}})
    lines.insert(1, "")  # blank lines are skipped but still counted
    path = write_ndjson(tmp_path / "invalid.ndjson", lines)
    with pytest.raises(LoadFailed) as caught:
        load(engine, settings, path)
    assert caught.value.problem.where == "line 5"
    assert caught.value.problem.status == 422
    assert "status" in caught.value.problem.message
    assert count(engine) == 0  # one batch: rolled back whole


def test_continue_on_error_collects_problems(engine: Engine, settings: Settings,
                                             tmp_path: Path) -> None:
    lines: list[Any] = [observation(i) for i in range(40)]
    lines[7] = "not json"
    lines[20] = {"resourceType": "Observation", "id": "bad"}
    lines[33] = ["not", "a", "resource"]
    path = write_ndjson(tmp_path / "mixed.ndjson", lines)
    report = load(engine, settings, path, batch_size=10, continue_on_error=True)
    assert report.failed == 3
    assert [p.where for p in report.errors] == ["line 8", "line 21", "line 34"]
    assert report.created == 37
    assert count(engine) == 37


def test_gzip_ndjson(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "obs.ndjson.gz", [observation(i) for i in range(50)],
                        opener=gzip.open)
    report = load(engine, settings, path, batch_size=20)
    assert report.created == 50
    assert report.bytes_read == path.stat().st_size
    assert count(engine) == 50


def test_single_resource_and_collection_bundle(engine: Engine, settings: Settings,
                                               tmp_path: Path) -> None:
    single = tmp_path / "patient.json"
    single.write_text(json.dumps({"resourceType": "Patient", "id": "solo"}))
    assert load(engine, settings, single).created == 1
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": observation(i)} for i in range(5)] + [{"fullUrl": "urn:x:no-resource"}]}
    path = tmp_path / "collection.json.gz"
    path.write_bytes(gzip.compress(json.dumps(collection).encode()))
    report = load(engine, settings, path, batch_size=2)
    assert (report.created, report.failed) == (5, 0)
    assert count(engine) == 6


def test_transaction_bundle_file_is_atomic(engine: Engine, settings: Settings,
                                           tmp_path: Path) -> None:
    urn = "urn:uuid:6f1b2f0e-1c1e-4f7e-8a53-0000000000aa"
    good = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": urn, "resource": {"resourceType": "Patient"},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**observation(1, with_id=False), "subject": {"reference": urn}},
         "request": {"method": "POST", "url": "Observation"}}]}
    path = tmp_path / "tx.json"
    path.write_text(json.dumps(good))
    assert load(engine, settings, path).created == 2
    bad = json.loads(json.dumps(good))
    bad["entry"][1]["resource"]["subject"]["reference"] = "Patient?identifier=none|none"
    path.write_text(json.dumps(bad))
    with pytest.raises(LoadFailed) as caught:
        load(engine, settings, path)
    assert "Patient?identifier=none|none" in str(caught.value)
    assert "nothing from this file was stored" in str(caught.value)
    assert count(engine) == 2


def test_synthea_file_as_is_stores_nothing(engine: Engine, settings: Settings,
                                           fhir_data: Path) -> None:
    path = sorted((fhir_data / "synthea").glob("*.json"))[0]
    report = load(engine, settings, path, continue_on_error=True)
    assert report.failed == 1 and report.created == 0
    assert report.errors[0].status == 404
    assert "?identifier=" in report.errors[0].message
    assert count(engine) == 0


def test_ndjson_under_a_json_name_and_missing_file(engine: Engine, settings: Settings,
                                                   tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "export.json", [observation(i) for i in range(3)])
    assert load(engine, settings, path).created == 3
    with pytest.raises(EhrError) as caught:
        load(engine, settings, tmp_path / "nope.ndjson")
    assert "nope.ndjson" in str(caught.value)
