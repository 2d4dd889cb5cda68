"""Bulk ``$export`` throughput and memory on PostgreSQL: resources/s and peak RSS.

    .venv/bin/python benchmarks/bulk_export.py [--resources 100000] [--reuse]

Creates ``ehr_bench_export`` (kept; ``--reuse`` skips the fill when it holds enough), fills it
with Patients and Observations through the store's own insert and index functions (the same
rows the write path makes, without its per-request round trips), then runs one system-level
export as a backend-services client in a child process, exactly as the server's export thread
runs it (access clause, label exclusion, NDJSON files), and reports wall time, resources/s and
the child's peak RSS (targets: >= 20,000 resources/s; <= 300 MB for 100 k resources).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_NAME = "ehr_bench_export"
PATIENTS_PER = 50  # one Patient per this many Observations


def _url() -> str:
    return sa.engine.make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(
        hide_password=False)


def fill(count: int, reuse: bool) -> None:
    from ehr.db import create_db_engine, unit_of_work
    from ehr.fhir import canonical_json
    from ehr.fhir.search import index_values
    from ehr.instants import instant, now_us
    from ehr.store import repository
    from ehr.store.index_writer import replace_index
    from ehr.store.migrate import upgrade

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": DB_NAME}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    from ehr.config import Settings

    engine = create_db_engine(Settings(database_url=_url()))
    upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM resource")).scalar_one()
    if reuse and have >= count:
        print(f"reusing {have:,} resources")
        return
    started = time.perf_counter()
    made = have
    while made < count:
        with unit_of_work(engine) as session:
            for _ in range(min(5000, count - made)):
                now = now_us()
                if made % PATIENTS_PER == 0:
                    rtype, pid = "Patient", str(uuid.uuid4())
                    body = {"resourceType": "Patient", "id": pid,
                            "name": [{"family": f"Bench{made}", "given": ["Pat"]}],
                            "gender": "female", "birthDate": "1980-01-01"}
                    patient = pid
                else:
                    rtype = "Observation"
                    body = {"resourceType": "Observation", "id": str(uuid.uuid4()),
                            "status": "final",
                            "category": [{"coding": [{
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                          "observation-category", "code": "vital-signs"}]}],
                            "code": {"coding": [{"system": "http://loinc.org",
                                                 "code": "8867-4", "display": "Heart rate"}]},
                            "subject": {"reference": f"Patient/{patient}"},
                            "effectiveDateTime": instant(now),
                            "valueQuantity": {"value": 60 + made % 40, "unit": "/min",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "/min"}}
                body["meta"] = {"versionId": "1", "lastUpdated": instant(now)}
                content = canonical_json.dumps(body)
                pk = repository.insert_resource(session, rtype, body["id"], content, now)
                repository.append_version(session, res_pk=pk, rtype=rtype, rid=body["id"],
                                          version_id=1, last_updated=now, method="create",
                                          content=content, request_id=None, actor_id="bench")
                replace_index(session, pk, rtype, index_values(rtype, body), fresh=True)
                made += 1
        print(f"  {made:,} resources ({made / (time.perf_counter() - started):,.0f}/s)",
              flush=True)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


def child() -> None:
    """The export itself, in a process of its own so its RSS is the export's alone."""
    from ehr.app import build_pipeline
    from ehr.config import Settings
    from ehr.context import Actor, RequestContext
    from ehr.db import create_db_engine, unit_of_work
    from ehr.fhir.bulk_export import ExportRunner
    from ehr.fhir.resource_types import R4_RESOURCE_TYPES
    from ehr.instants import now_us
    from ehr.store import export_jobs

    settings = Settings(database_url=_url(), var_dir=Path(os.environ["BENCH_VAR"]))
    engine = create_db_engine(settings)
    pipeline = build_pipeline(settings)
    actor = Actor(id="bench-client", kind="client", display="bench",
                  scopes=frozenset({"system/*.rs"}))
    ctx = RequestContext(actor=actor)
    job_id = uuid.uuid4().hex
    types = sorted(R4_RESOURCE_TYPES - {"Parameters", "OperationOutcome", "Bundle",
                                        "AuditEvent"})
    with unit_of_work(engine) as session:
        export_jobs.create(session, job_id=job_id, owner=actor.id, request_url="bench",
                           level="system", spec={"types": types, "since": None,
                                                 "patients": None, "level": "system"},
                           now=now_us())
    started = time.perf_counter()
    ExportRunner(engine, pipeline).run(job_id, ctx, "http://bench/fhir")
    seconds = time.perf_counter() - started
    with unit_of_work(engine, write=False) as session:
        job = export_jobs.get(session, job_id)
    assert job is not None and job.state == "completed", job
    total = sum(o["count"] for o in job.output or [])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exported {total:,} resources in {seconds:.2f} s: {total / seconds:,.0f} "
          f"resources/s; peak RSS {peak:.0f} MiB; files {[o['type'] for o in job.output or []]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child()
        return
    fill(args.resources, args.reuse)
    var = ROOT / "var" / "bench-export"
    var.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_VAR": str(var), "EHR_DATABASE_URL": _url()}
    subprocess.run([sys.executable, __file__, "--child"], env=env, check=True)


if __name__ == "__main__":
    main()
