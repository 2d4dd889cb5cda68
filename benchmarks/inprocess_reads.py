"""CPU per read through the FHIR router in one thread: no HTTP, no wrk, no other request
competing for the GIL, so what access control and the audit trail add by themselves
(``security_overhead.py`` measures them under load). Reuses ``security_overhead.py``'s
database, user and ids.

    .venv/bin/python benchmarks/inprocess_reads.py [N] [A|B|C]

The application's CPU is this process's (every thread: the audit sealer too); the database's is
that of every backend of the benchmark database.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_security_overhead"
WORK = Path("/tmp/ehr-bench-security")
BASE = "http://testserver/fhir"  # the test client's: the token's issuer and audience


def _backend_cpu(engine: object) -> float:
    import sqlalchemy as sa

    with engine.connect() as conn:  # type: ignore[attr-defined]
        pids = [p for (p,) in conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return total


def run(config: str, n: int) -> None:
    os.environ.update(EHR_DATABASE_URL=URL, EHR_VAR_DIR=str(WORK / "var"),
                      EHR_AUTH_REQUIRED=str(config != "A").lower(),
                      EHR_AUDIT_ENABLED=str(config == "C").lower(), EHR_LOG_LEVEL="warning")
    from fastapi.testclient import TestClient

    from ehr.app import create_app
    from ehr.context import SYSTEM
    from ehr.fhir.api import request_context
    from ehr.fhir.http import FhirRequest

    ids = (WORK / "ids.txt").read_text().split()
    app = create_app()

    class _Request:  # what request_context reads off a Starlette request
        headers = {"user-agent": "inprocess-reads"}
        client = None

    with TestClient(app) as client:
        token = client.post("/auth/token", data={
            "grant_type": "password", "username": "bench-physician",
            "password": "bench-physician-password"}).json()["access_token"]
        auth, fhir = app.state.auth, app.state.fhir

        def one(pid: str) -> int:
            actor = SYSTEM if config == "A" else auth.actor(f"Bearer {token}", BASE)
            ctx = request_context(_Request(), BASE, actor)  # type: ignore[arg-type]
            request = FhirRequest(method="GET", path=f"Patient/{pid}", query=[],
                                  headers={"accept": "application/fhir+json"}, body=b"",
                                  base_url=BASE)
            return fhir.handle(request, ctx).status

        for pid in ids[:200]:  # warm: statements prepared, caches filled
            assert one(pid) == 200
        rnd = random.Random(1)
        picks = [rnd.choice(ids) for _ in range(n)]
        db0, cpu0 = _backend_cpu(app.state.engine), time.process_time()
        wall0 = time.perf_counter()
        for pid in picks:
            one(pid)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        db = _backend_cpu(app.state.engine) - db0
    print(f"{config}: {cpu / n * 1e3:.3f} ms application CPU + {db / n * 1e3:.3f} ms database "
          f"CPU per read, wall {wall / n * 1e3:.3f} ms", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    run(sys.argv[2] if len(sys.argv) > 2 else "C", int(sys.argv[1]) if len(sys.argv) > 1
        else 3000)
