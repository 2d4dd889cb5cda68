"""CPU per read of configurations A, B and C measured side by side in one process, request by
request (A, B, C, A, B, C, ...), so that whatever else the machine does falls on all of them
alike: on the shared 2-core machines one configuration's figure moves by 2x between runs, which
hides differences of a few percent. Reuses ``security_overhead.py``'s database, user and ids.

    .venv/bin/python benchmarks/interleaved_reads.py [N] [A,B,C]

Per configuration: the CPU of the request thread (``time.thread_time``), of that app's audit
sealer threads, and of that app's own database backends (each app has its own engine, told apart
by ``application_name``).
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import procs

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_security_overhead"
WORK = Path("/tmp/ehr-bench-security")
BASE = "http://testserver/fhir"


def _backends_cpu(engine: Any, name: str) -> float:
    import sqlalchemy as sa

    with engine.connect() as conn:
        pids = [p for (p,) in conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": name})]
    return procs.cpu_seconds(pids)


def _sealers_cpu(engine: Any) -> float:
    """CPU of the threads this process runs for ``engine``'s audit sealer."""
    tids = []
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        owner = getattr(getattr(target, "__self__", None), "engine", None)
        if thread.name == "ehr-audit-sealer" and owner is engine and thread.native_id:
            tids.append(thread.native_id)
    return procs.cpu_seconds(tids, task="self")


def _app(config: str) -> tuple[Any, Any, Callable[[str], int]]:
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from ehr.app import create_app
    from ehr.config import Settings
    from ehr.context import SYSTEM
    from ehr.fhir.api import request_context
    from ehr.fhir.http import FhirRequest

    settings = Settings(database_url=URL, var_dir=WORK / "var",
                        auth_required=config != "A", audit_enabled=config == "C")
    engine = sa.create_engine(URL, pool_pre_ping=True,
                              connect_args={"application_name": f"bench-{config}"})
    app = create_app(settings, engine)
    client = TestClient(app)
    client.__enter__()
    token = client.post("/auth/token", data={
        "grant_type": "password", "username": "bench-physician",
        "password": "bench-physician-password"}).json()["access_token"]
    auth, fhir = app.state.auth, app.state.fhir

    class _Request:
        headers = {"user-agent": "interleaved-reads"}
        client = None

    def one(pid: str) -> int:
        actor = SYSTEM if config == "A" else auth.actor(f"Bearer {token}", BASE)
        ctx = request_context(_Request(), BASE, actor)  # type: ignore[arg-type]
        request = FhirRequest(method="GET", path=f"Patient/{pid}", query=[],
                              headers={"accept": "application/fhir+json"}, body=b"",
                              base_url=BASE)
        return fhir.handle(request, ctx).status

    return client, engine, one


def main(n: int, configs: list[str]) -> None:
    ids = (WORK / "ids.txt").read_text().split()
    apps = {c: _app(c) for c in configs}
    for _, _, one in apps.values():
        for pid in ids[:200]:
            assert one(pid) == 200
    rnd = random.Random(1)
    picks = [rnd.choice(ids) for _ in range(n)]
    thread_cpu = dict.fromkeys(configs, 0.0)
    db0 = {c: _backends_cpu(e, f"bench-{c}") for c, (_, e, _) in apps.items()}
    seal0 = {c: _sealers_cpu(e) for c, (_, e, _) in apps.items()}
    for i, pid in enumerate(picks):
        order = configs[i % len(configs):] + configs[:i % len(configs)]
        for config in order:
            one = apps[config][2]
            started = time.thread_time()
            one(pid)
            thread_cpu[config] += time.thread_time() - started
    time.sleep(0.3)  # the last seals
    for config, (client, engine, _) in apps.items():
        db = _backends_cpu(engine, f"bench-{config}") - db0[config]
        seal = _sealers_cpu(engine) - seal0[config]
        app_ms = (thread_cpu[config] + seal) / n * 1e3
        print(f"{config}: {app_ms:.3f} ms application CPU (request thread "
              f"{thread_cpu[config] / n * 1e3:.3f}, sealer {seal / n * 1e3:.3f}) + "
              f"{db / n * 1e3:.3f} ms database CPU = {app_ms + db / n * 1e3:.3f} ms per read",
              flush=True)
        client.__exit__(None, None, None)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000,
         (sys.argv[2] if len(sys.argv) > 2 else "A,B,C").split(","))
