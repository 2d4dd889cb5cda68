"""A crash in the middle of a write load (issue 4 item 6), PostgreSQL only: after a SIGKILL of
every server process there is no committed write without its audit record and no successful
write record without its write, the chain verifies, and a restarted server serves and appends.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from ehr_testing import sealed
from sqlalchemy import Engine, create_engine, text

from audit.test_concurrency import (
    FHIR_JSON,
    create_user,
    fresh_database,
    live_server,
    require_postgres,
    user_token,
    verify_chain,
)


def settle(engine: Engine) -> None:
    """Wait until the killed workers' database sessions are gone: a COMMIT already sent
    before the kill may still land, and the checks must see the final state."""
    deadline = time.monotonic() + 60  # a loaded 2-core machine can be slow to reap them
    with engine.connect() as conn:
        while True:
            # pg_stat_activity is a snapshot per transaction: clear it on every poll.
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            others = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")).scalar_one()
            if others == 0:
                break
            assert time.monotonic() < deadline, "the killed server's sessions did not end"
            time.sleep(0.1)


def test_sigkill_during_writes_leaves_writes_and_records_in_step(tmp_path: Path) -> None:
    require_postgres()
    with fresh_database("ehr_audit_crash") as url:
        engine = create_engine(url)
        try:
            with live_server(url, tmp_path, workers=2) as server:
                create_user(engine, "crashdoc")
                headers = {**user_token(server.base, "crashdoc"), **FHIR_JSON}
                stop = threading.Event()
                done = [0] * 8

                def work(n: int) -> None:
                    with httpx.Client(base_url=server.base, headers=headers,
                                      timeout=10) as http:
                        i = 0
                        while not stop.is_set():
                            i += 1
                            try:
                                pid = http.post("/fhir/Patient", json={
                                    "resourceType": "Patient"}).json()["id"]
                                http.put(f"/fhir/Patient/{pid}", json={
                                    "resourceType": "Patient", "id": pid, "active": True})
                                http.put(f"/fhir/Patient/w{n}-{i % 5}", json={
                                    "resourceType": "Patient", "id": f"w{n}-{i % 5}",
                                    "name": [{"family": str(i)}]})
                            except (httpx.HTTPError, ValueError, KeyError):
                                return  # the server is gone
                            done[n] += 3

                pool = [threading.Thread(target=work, args=(n,)) for n in range(8)]
                for t in pool:
                    t.start()
                time.sleep(2.0)
                deadline = time.monotonic() + 8  # a slow machine: let the writes get going
                while sum(done) < 30 and time.monotonic() < deadline:
                    time.sleep(0.1)
                server.kill()  # mid-load: requests are in flight in both workers
                stop.set()
                for t in pool:
                    t.join(timeout=15)
                assert sum(done) >= 30, f"too little load before the kill: {done}"
            settle(engine)
            # Records committed by killed workers whose sealer had not run yet wait in
            # audit_pending; the next seal (here, as `ehr audit verify` would) chains them.
            sealed(engine)

            with engine.connect() as conn:
                versions = conn.execute(text(
                    "SELECT rtype, rid, version_id FROM resource_version")).all()
                writes = conn.execute(text(
                    "SELECT rtype, rid, version_id, outcome FROM audit_record WHERE "
                    "interaction IN ('create', 'update', 'delete')")).all()
            recorded: dict[tuple[str, str, int], int] = {}
            for rtype, rid, version_id, outcome in writes:
                if outcome == "success":
                    key = (rtype, rid, version_id)
                    recorded[key] = recorded.get(key, 0) + 1
            stored = {(r.rtype, r.rid, r.version_id) for r in versions}
            assert len(stored) == len(versions) >= 30
            # Every committed version has exactly one record, and every successful write
            # record has its committed version.
            assert {k: 1 for k in stored} == recorded
            before = verify_chain(engine)

            with live_server(url, tmp_path, workers=2) as again:
                headers = {**user_token(again.base, "crashdoc"), **FHIR_JSON}
                created = httpx.post(f"{again.base}/fhir/Patient", headers=headers,
                                     json={"resourceType": "Patient"}, timeout=10)
                assert created.status_code == 201, created.text
                read = httpx.get(f"{again.base}/fhir/Patient/{created.json()['id']}",
                                 headers=headers, timeout=10)
                assert read.status_code == 200
            sealed(engine)
            # The token, the create and the read, appended after the crash on the same chain.
            with engine.connect() as conn:
                after = conn.execute(text("SELECT interaction FROM audit_record WHERE seq > :s "
                                          "ORDER BY seq"), {"s": before}).scalars().all()
            assert after == ["token-issued", "create", "read"]
            assert verify_chain(engine) == before + 3
            print(f"\n{len(stored)} versions committed before the kill; chain of {before} "
                  "records verified, and 3 more after the restart")
        finally:
            engine.dispose()
