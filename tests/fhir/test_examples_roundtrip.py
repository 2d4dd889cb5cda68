"""Every official R4 example survives POST then GET unchanged, apart from the server-owned ``id``,
``meta.versionId`` and ``meta.lastUpdated``. Runs on SQLite and PostgreSQL.

One app per module and backend: the examples get server-assigned ids, so they cannot collide,
and skipping the per-test table wipe keeps 300 files x 2 databases fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplejson
from sqlalchemy import Engine

from ehr.config import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-data" / "r4-examples"
NOT_STORED = {"OperationOutcome", "Parameters"}
READ_ONLY = {"AuditEvent"}
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


def _strip_server_fields(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "id"}
    meta = {k: v for k, v in (out.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    out.pop("meta", None)
    if meta:
        out["meta"] = meta
    return out


@pytest.fixture(scope="module")
def shared_client(
    _engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory,
    bearer_header: Any,
) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from ehr.app import create_app

    settings = Settings(database_url=database_url, var_dir=tmp_path_factory.mktemp("var"))
    app = create_app(settings, _engine)
    with TestClient(app) as client:
        client.headers.update(
            bearer_header(app, subject="t", kind="client", scopes="system/*.cruds"))
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.stem)
def test_example_round_trips(shared_client: Any, path: Path) -> None:
    original = json.loads(path.read_bytes(), parse_float=Decimal)
    rtype = original["resourceType"]
    if rtype in NOT_STORED:
        pytest.skip(f"{rtype} is not a stored resource type")
    sent = {k: v for k, v in original.items() if k != "id"}
    body = _dumps_decimal(sent)
    response = shared_client.post(f"/fhir/{rtype}", content=body, headers=FHIR_JSON)
    if rtype in READ_ONLY:
        assert response.status_code == 405, response.text
        check = shared_client.post(f"/fhir/{rtype}/$validate", content=body, headers=FHIR_JSON)
        assert check.status_code == 200
        errors = [i for i in check.json()["issue"] if i["severity"] in ("error", "fatal")]
        assert errors == [], errors
        return
    assert response.status_code == 201, response.text[:2000]
    rid = response.json()["id"]
    read = shared_client.get(f"/fhir/{rtype}/{rid}")
    assert read.status_code == 200
    got = json.loads(read.content, parse_float=Decimal)
    assert got["id"] == rid
    assert got["meta"]["versionId"] == "1"
    assert _strip_server_fields(got) == _strip_server_fields(original)
    # The POST response body is the stored resource too.
    assert json.loads(response.content, parse_float=Decimal) == got


def _dumps_decimal(value: Any) -> bytes:
    # simplejson writes Decimals verbatim, so 1.50 is sent as 1.50.
    return str(simplejson.dumps(value, use_decimal=True, ensure_ascii=False)).encode()


def test_examples_are_present(fhir_data: Path) -> None:
    files = _example_files()
    assert len(files) > 300
    assert fhir_data / "r4-examples" == EXAMPLES
