"""``ehr audit verify`` on a million records: rate and peak RSS, on PostgreSQL.

    .venv/bin/python benchmarks/audit_verify.py [--records 1000000] [--reuse] [--profile]

Creates ``ehr_bench_audit`` (dropped first unless ``--reuse`` finds it filled), migrates it (the
append-only triggers are on), then writes chained records the way the sequencer would: bodies
shaped like ``recorder.build_pending``'s, serialised with ``canonical`` and chained with ``link``,
loaded with COPY, a signed checkpoint every 10,000 records and the head row at the end. Then it
runs ``ehr audit verify`` as a child process and reports wall time, records/s, the child's
peak RSS (``wait4`` rusage, VmHWM) and the peak of the RSS summed over the child and its worker
processes (sampled from /proc every 20 ms). ``--workers N`` is passed on to the verifier.
``--profile`` runs the verifier in-process under cProfile instead and prints where the time
goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ehr.audit.canonical import GENESIS, canonical, link  # noqa: E402
from ehr.audit.recorder import instant  # noqa: E402
from ehr.auth.checkpoint_signing import checkpoint_signer, checkpoint_verifier  # noqa: E402
from ehr.auth.keys import generate_pem, server_key_from_pem  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_NAME = "ehr_bench_audit"
COLUMNS = ("seq", "time", "category", "interaction", "outcome", "status", "actor_id",
           "actor_kind", "rtype", "rid", "version_id", "request_id", "purpose", "protected",
           "body", "prev_hash", "hash")
INTERACTIONS = (("read", 200), ("search-type", 200), ("create", 201), ("update", 200),
                ("vread", 200), ("read", 403), ("history-instance", 200))


def _url(name: str) -> str:
    return sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _create_database(reuse: bool, records: int) -> bool:
    """True when the database must be filled."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": DB_NAME}).first()
    if reuse and exists:
        engine = sa.create_engine(_url(DB_NAME))
        with engine.connect() as conn:
            have = conn.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
        engine.dispose()
        if have == records:
            admin.dispose()
            return False
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    from ehr.store.migrate import upgrade

    engine = sa.create_engine(_url(DB_NAME))
    upgrade(engine)
    engine.dispose()
    return True


def _fill(records: int, key_pem: bytes) -> None:
    import psycopg

    signer = checkpoint_signer(server_key_from_pem(key_pem))
    rng = random.Random(4)
    actors = [(f"user-{i}", "user" if i % 4 else "client", f"User {i}") for i in range(40)]
    patients = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(5_000)]
    now = 1_764_000_000_000_000
    prev = GENESIS
    started = time.perf_counter()
    conninfo = _url(DB_NAME).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY audit_record ({', '.join(COLUMNS)}) FROM STDIN") as rec_copy:
            pat_rows: list[tuple[int, str]] = []
            cps: list[tuple[int, str, int, str]] = []
            for seq in range(1, records + 1):
                now += rng.randrange(1, 200_000)
                interaction, status = INTERACTIONS[seq % len(INTERACTIONS)]
                actor = actors[seq % len(actors)]
                concerned = rng.sample(patients, 3 if interaction == "search-type" else 1)
                rid = concerned[0]
                protected = ["PSYTHPN"] if seq % 50 == 0 else []
                request_id = uuid.UUID(int=rng.getrandbits(128)).hex
                body = canonical({
                    "time": instant(now), "category": "rest", "interaction": interaction,
                    "outcome": "success" if status < 400 else "denied", "status": status,
                    "actor": {"id": actor[0], "kind": actor[1], "display": actor[2],
                              "roles": ["physician"]},
                    "source": {"ip": "10.0.0.7", "user_agent": "Mozilla/5.0 (bench)"},
                    "resource": {"type": "Patient", "id": rid, "version": 1},
                    "patients": concerned, "request_id": request_id,
                    "purpose_of_use": "TREAT", "protected": protected,
                    "query": "name=smi" if interaction == "search-type" else None,
                    "detail": {}, "seq": seq})
                digest = link(prev, body)
                rec_copy.write_row((seq, now, "rest", interaction,
                                    "success" if status < 400 else "denied", status, actor[0],
                                    actor[1], "Patient", rid, 1, request_id, "TREAT",
                                    bool(protected), body, prev, digest))
                pat_rows += [(seq, p) for p in dict.fromkeys(concerned)]
                prev = digest
                if seq % 10_000 == 0:
                    cps.append((seq, digest, now,
                                signer({"seq": seq, "hash": digest, "time": now})))
                if seq % 100_000 == 0:
                    print(f"  generated {seq:,} records", flush=True)
        with cur.copy("COPY audit_patient (seq, patient_id) FROM STDIN") as pat_copy:
            for row in pat_rows:
                pat_copy.write_row(row)
        cur.executemany("INSERT INTO audit_checkpoint (seq, hash, time, jws) "
                        "VALUES (%s, %s, %s, %s)", cps)
        last_cp = cps[-1] if cps else (0, GENESIS, 0, "")
        cur.execute("UPDATE audit_head SET seq = %s, hash = %s, checkpoint_seq = %s, "
                    "checkpoint_time = %s WHERE id = 1", (records, prev, last_cp[0], last_cp[2]))
        conn.commit()
        cur.execute("ANALYZE")
    print(f"filled {records:,} records in {time.perf_counter() - started:.1f} s", flush=True)


def _tree_kib(pid: int, key: str) -> dict[int, int]:
    """``key`` (VmRSS, VmHWM) of ``pid`` and each of its descendants, in KiB."""
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        found[p] = next((int(line.split()[1]) for line in status.splitlines()
                         if line.startswith(key + ":")), 0)
        todo += [int(k) for k in kids]
    return found


def _run_verify(key_file: Path, var_dir: Path, workers: int | None) -> None:
    env = {**os.environ, "EHR_DATABASE_URL": _url(DB_NAME), "EHR_VAR_DIR": str(var_dir),
           "EHR_AUTH_SIGNING_KEY_FILE": str(key_file)}
    extra = [] if workers is None else ["--workers", str(workers)]
    started = time.perf_counter()
    child = subprocess.Popen([str(ROOT / ".venv/bin/ehr"), "audit", "verify", *extra], env=env,
                             stdout=subprocess.PIPE, text=True)
    summed = [0]
    # Each process's own high-water mark (VmHWM starts again at exec). Not the rusage of the
    # child: a child forked from this process (large after filling the database) reports this
    # process's size as its maximum, whatever the verifier itself used.
    hwm: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            summed[0] = max(summed[0], sum(_tree_kib(child.pid, "VmRSS").values()))
            for pid, kib in _tree_kib(child.pid, "VmHWM").items():
                hwm[pid] = max(hwm.get(pid, 0), kib)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read()
    done.set()
    sampler.join()
    _, status, _ = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    print(output.strip())
    print(f"ehr audit verify: exit {code}, wall {elapsed:.1f} s (process start and the "
          f"migration check included), peak RSS {hwm.get(child.pid, 0) / 1024:.0f} MiB (main "
          f"process), {max(hwm.values(), default=0) / 1024:.0f} MiB (largest process), "
          f"{summed[0] / 1024:.0f} MiB summed over all its processes")


def _profile(key_pem: bytes, workers: int | None) -> None:
    from ehr.audit.verify import verify_chain

    engine = sa.create_engine(_url(DB_NAME))
    verifier = checkpoint_verifier(server_key_from_pem(key_pem))
    profiler = cProfile.Profile()
    profiler.enable()
    # Only this process is profiled: with workers, their ranges show as waiting.
    report = verify_chain(engine, verifier, workers=1 if workers is None else workers)
    profiler.disable()
    print(report.summary())
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database when it already holds --records records")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--workers", type=int, default=None,
                        help="verifier processes (default: the verifier's own, one per CPU)")
    args = parser.parse_args()
    work = Path(tempfile.gettempdir()) / "ehr_bench_audit"
    work.mkdir(exist_ok=True)
    key_file = work / "signing-key.pem"
    if not key_file.is_file():
        key_file.write_bytes(generate_pem())
    key_pem = key_file.read_bytes()
    if _create_database(args.reuse, args.records):
        _fill(args.records, key_pem)
    if args.profile:
        _profile(key_pem, args.workers)
    else:
        _run_verify(key_file, work / "var", args.workers)


if __name__ == "__main__":
    main()
