"""The chain under concurrent load (issue 4 items 3 and 6), PostgreSQL only: the real server
with several worker processes, many client threads, and afterwards a chain with no forks or
gaps that recomputes from the first record to the head.

The helpers here (a fresh database, a live server, a user token, the chain walk) are shared
with ``test_crash``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from ehr.audit.canonical import GENESIS, link
from ehr.audit.events import AccessEvent
from ehr.audit.recorder import AuditRecorder
from ehr.audit.sequencer import Sequencer
from ehr.auth.settings import AuthSettings
from ehr.auth.users import Users
from ehr.context import RequestContext
from ehr.db import normalise_url, unit_of_work

PASSWORD = "correct horse battery staple"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
# Cheap argon2 for the server and the user it checks: the load is about the chain.
CHEAP_ARGON2 = {"EHR_AUTH_ARGON2_TIME_COST": "1", "EHR_AUTH_ARGON2_MEMORY_KIB": "8192",
                "EHR_AUTH_ARGON2_PARALLELISM": "1"}


def postgres_url() -> str | None:
    url = os.environ.get("EHR_TEST_POSTGRES_URL")
    if url:
        return normalise_url(url)
    if "postgresql" not in os.environ.get("EHR_TEST_BACKENDS", "sqlite,postgresql"):
        return None
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    except OSError:
        return None


def require_postgres() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL only: several server processes on one SQLite file do not "
                    "exercise the sealing this test is about")
    return url


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A database of its own, dropped at the end (with any connection still open to it)."""
    admin_url = require_postgres()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole process group: the supervisor and every worker at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def live_server(database_url: str, workdir: Path, workers: int) -> Iterator[LiveServer]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"server-{port}.log"
    env = {**os.environ, **CHEAP_ARGON2, "EHR_DATABASE_URL": database_url,
           "EHR_VAR_DIR": str(workdir / "var"), "EHR_LOG_LEVEL": "warning",
           "EHR_DB_POOL_SIZE": "8"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ehr.cli", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LiveServer(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 25
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        server.kill()


def create_user(engine: Engine, username: str) -> None:
    auth = AuthSettings(auth_argon2_time_cost=1, auth_argon2_memory_kib=8192,
                        auth_argon2_parallelism=1)
    with unit_of_work(engine) as session:
        Users(auth).create(session, username=username, password=PASSWORD,
                           roles=["physician"], practitioner=f"Practitioner/{username}")


def user_token(base: str, username: str) -> dict[str, str]:
    response = httpx.post(f"{base}/auth/token", data={
        "grant_type": "password", "username": username, "password": PASSWORD,
        "scope": "user/*.cruds"}, timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def verify_chain(engine: Engine) -> int:
    """seq 1..N contiguous, every prev_hash the previous hash, every hash recomputed, and the
    head row naming the last record; returns N."""
    prev, seq = GENESIS, 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=2000).execute(text(
            "SELECT seq, body, prev_hash, hash FROM audit_record ORDER BY seq"))
        for row in result:
            seq += 1
            assert row.seq == seq, f"gap or fork before seq {row.seq}"
            assert row.prev_hash == prev, f"seq {seq} does not link to seq {seq - 1}"
            assert link(prev, row.body) == row.hash, f"seq {seq} does not recompute"
            prev = row.hash
        head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    assert (head.seq, head.hash) == (seq, prev), "the head is not the last record"
    return seq


def wait_until_sealed(engine: Engine, seconds: float = 10) -> None:
    """The workers' background sealers chain every committed record within milliseconds."""
    deadline = time.monotonic() + seconds
    with engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM audit_pending")).scalar_one():
            assert time.monotonic() < deadline, "records were left pending"
            conn.commit()
            time.sleep(0.02)


def append_cost_us(engine: Engine, rounds: int = 200) -> tuple[float, float]:
    """Median microseconds of a transaction with one audit record (written as a request
    writes it, sealed in the background), and of one without."""
    recorder = AuditRecorder(Sequencer(), lambda: time.time_ns() // 1000, seal_interval_ms=5)
    ctx = RequestContext(user_agent="append-cost")
    with_append: list[float] = []
    without: list[float] = []
    for i in range(rounds):
        start = time.perf_counter()
        with unit_of_work(engine) as session:
            session.execute(text("SELECT 1"))
            recorder.record(session, ctx, AccessEvent("read", "Patient", str(i)))
        with_append.append(time.perf_counter() - start)
        start = time.perf_counter()
        with unit_of_work(engine) as session:
            session.execute(text("SELECT 1"))
        without.append(time.perf_counter() - start)
    recorder.close()
    with_append.sort()
    without.sort()
    return with_append[rounds // 2] * 1e6, without[rounds // 2] * 1e6


def test_chain_stays_whole_under_three_workers_and_sixteen_threads(tmp_path: Path) -> None:
    threads, rounds = 16, 13  # three requests per round: 624 requests
    with fresh_database("ehr_audit_conc") as url, \
            live_server(url, tmp_path, workers=3) as server:
        engine = create_engine(url)
        try:
            create_user(engine, "loaddoc")
            headers = {**user_token(server.base, "loaddoc"), **FHIR_JSON}
            # Whatever the server recorded before the load (published definitions, the token).
            wait_until_sealed(engine)
            base = verify_chain(engine)
            statuses: Counter[int] = Counter()
            errors: list[str] = []
            lock = threading.Lock()

            def work(n: int) -> None:
                with httpx.Client(base_url=server.base, headers=headers, timeout=30) as http:
                    for i in range(rounds):
                        try:
                            created = http.post("/fhir/Patient", json={
                                "resourceType": "Patient", "name": [{"family": f"L{n}x{i}"}]})
                            pid = created.json().get("id")
                            read = http.get(f"/fhir/Patient/{pid}")
                            found = http.get(f"/fhir/Patient?_id={pid}")
                        except httpx.HTTPError as exc:
                            with lock:
                                errors.append(repr(exc))
                            return
                        with lock:
                            statuses.update(r.status_code for r in (created, read, found))

            started = time.perf_counter()
            pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            elapsed = time.perf_counter() - started
            assert not errors, errors[:3]
            requests = sum(statuses.values())
            assert requests >= 500 and set(statuses) <= {200, 201}, statuses
            wait_until_sealed(engine)
            records = verify_chain(engine)
            # Exactly one record per request.
            assert records == base + requests
            with engine.connect() as conn:
                per_worker = conn.execute(text(
                    "SELECT count(DISTINCT request_id) FROM audit_record WHERE seq > :b"),
                    {"b": base}).scalar_one()
            assert per_worker == requests
            appended, bare = append_cost_us(engine)
            print(f"\n{requests} requests from {threads} threads on 3 workers in "
                  f"{elapsed:.2f} s ({requests / elapsed:.0f} req/s); chain of {records} "
                  f"records verifies; audit append: median {appended:.0f} us per "
                  f"transaction vs {bare:.0f} us without (+{appended - bare:.0f} us)")
        finally:
            engine.dispose()
