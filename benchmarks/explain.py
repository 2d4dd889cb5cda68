"""Capture the SQL that one FHIR search runs and ``EXPLAIN (ANALYZE, BUFFERS)`` it on PostgreSQL.

Usage::

    EHR_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/DB \\
        python benchmarks/explain.py 'Observation?patient=Patient/bench-p0&code=...'

The request goes through the real router (same search parsing and SQL generation as the server);
a ``before_cursor_execute`` listener records each statement with its bound parameters, and every
SELECT is then explained with those same parameters.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import event

_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
_INDEX = re.compile(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) "
                    r"(\w+)")
_EXEC = re.compile(r"Execution Time: ([\d.]+) ms")


def explain(database_url: str, request_path: str, runs: int = 3) -> list[dict[str, Any]]:
    """Explain every SELECT that ``GET /fhir/<request_path>`` runs; one dict per statement."""
    from ehr.app import build_pipeline
    from ehr.config import Settings
    from ehr.context import RequestContext
    from ehr.db import create_db_engine
    from ehr.fhir.http import FhirRequest
    from ehr.fhir.router import FhirRouter
    from ehr.store.migrate import upgrade

    settings = Settings(database_url=database_url)
    engine = create_db_engine(settings)
    upgrade(engine)  # as `ehr serve` would: the pipeline may need tables of newer revisions
    captured: list[tuple[str, Any]] = []

    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
                 _many: bool) -> None:
        captured.append((statement, parameters))

    parts = urlsplit(request_path)
    request = FhirRequest(method="GET", path=parts.path.lstrip("/"),
                          query=parse_qsl(parts.query, keep_blank_values=True),
                          headers={"accept": "application/fhir+json"},
                          base_url="http://127.0.0.1/fhir")
    router = FhirRouter(engine, build_pipeline(settings))
    response = router.handle(request, RequestContext(user_agent="benchmarks/explain.py"))
    if response.status != 200:
        raise RuntimeError(f"{request_path}: HTTP {response.status}: {response.body[:500]!r}")
    body = json.loads(response.body)
    event.listen(engine, "before_cursor_execute", _capture)
    router.handle(request, RequestContext(user_agent="benchmarks/explain.py"))
    event.remove(engine, "before_cursor_execute", _capture)

    results = []
    with engine.connect() as conn:
        for statement, params in captured:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan_text = ""
            for _ in range(runs):  # the last run is warm, like the measured requests
                rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement,
                                            params).all()
                plan_text = "\n".join(r[0] for r in rows)
            executed = _EXEC.search(plan_text)
            results.append({
                "sql": statement,
                "params": {k: str(v) for k, v in params.items()} if isinstance(params, dict)
                else [str(v) for v in (params or ())],
                "plan": plan_text,
                "seq_scans": sorted(set(_SEQ_SCAN.findall(plan_text))),
                "indexes": sorted(set(_INDEX.findall(plan_text))),
                "execution_ms": float(executed.group(1)) if executed else None,
            })
        conn.rollback()
    engine.dispose()
    for item in results:
        item["matches_total"] = body.get("total")
        item["entries_on_page"] = len(body.get("entry") or [])
    return results


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description="EXPLAIN ANALYZE the SQL of one FHIR search")
    parser.add_argument("request", help="path below /fhir, e.g. 'Patient?name=smi'")
    parser.add_argument("--url", default=os.environ.get("EHR_DATABASE_URL"))
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("set EHR_DATABASE_URL or pass --url")
    for item in explain(args.url, args.request):
        print("-- SQL:", item["sql"].strip(), file=sys.stdout)
        print("-- params:", item["params"])
        print(item["plan"])
        print(f"-- seq scans: {item['seq_scans'] or 'none'}; indexes: {item['indexes']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
