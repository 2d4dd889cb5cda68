"""One configuration of ``security_overhead.py`` under its wrk load, with the CPU split into
user and system time of the server workers and their database backends, and optionally a
py-spy profile of one worker (``--gil``: only samples holding the GIL, i.e. Python running).

Run after ``security_overhead.py`` (it reuses that run's database, user and ids):

    .venv/bin/python benchmarks/profile_security.py C read          # + py-spy
    .venv/bin/python benchmarks/profile_security.py C250 read 10 nospy
    .venv/bin/python benchmarks/profile_summary.py /tmp/ehr-bench-security/profile_C_read.raw

Configurations are those of ``security_overhead.py`` plus ``C<ms>``: C with that seal interval.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import procs
import wrk_run
from measure import EHR, HERE, ROOT, vacuum_audit_queue
from security_overhead import _backends, _env, _token

CONFIGS = {"A": (False, False, None), "B": (True, False, None), "C": (True, True, None),
           "L": (True, True, "0")}
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_security_overhead"
WORK = Path("/tmp/ehr-bench-security")


def _config(name: str) -> tuple[bool, bool, str | None]:
    if name in CONFIGS:
        return CONFIGS[name]
    if name.startswith("C") and name[1:].isdigit():
        return True, True, name[1:]
    raise SystemExit(f"unknown configuration {name!r}")


def main() -> int:
    name, kind = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    spy_on = len(sys.argv) <= 4 or sys.argv[4] != "nospy"
    auth, audit, interval = _config(name)
    env = _env(URL, WORK / "var", auth=auth, audit=audit, seal_interval_ms=interval)
    port = 18492
    script = HERE / "wrk" / f"{kind}.lua"
    sargs = [str(WORK / "ids.txt")] if kind == "read" else []
    vacuum_audit_queue(URL)
    with procs.Server(EHR, port, 2, env, WORK / f"profile_{name}.log") as server:
        headers = [f"Authorization: Bearer {_token(port)}"] if auth else []
        base = f"http://127.0.0.1:{port}"
        wrk_run.run(base, connections=8, seconds=3, script=script, script_args=sargs,
                    headers=headers)
        workers = procs.worker_pids(server.pid)
        backends = _backends(URL)
        before = (procs.cpu_times(workers), procs.cpu_times(backends))
        out = WORK / f"profile_{name}_{kind}.raw"
        spy = None
        if spy_on:
            spy = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "-p", str(workers[0]),
                 "-d", str(int(seconds)), "-r", "250", "-f", "raw", "--gil", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res = wrk_run.run(base, connections=8, seconds=seconds, script=script,
                          script_args=sargs, headers=headers)
        if spy is not None:
            spy.wait()
        after = (procs.cpu_times(workers), procs.cpu_times(backends))
    per = 1000 / max(res.requests, 1)
    for label, b, a in zip(("server", "database"), before, after, strict=True):
        print(f"  {label}: user {(a[0] - b[0]) * per:.2f} ms + system "
              f"{(a[1] - b[1]) * per:.2f} ms per request")
    print(f"{name} {kind}: {res.rps:.0f} req/s, non-2xx {res.non_2xx}"
          + (f"; profile {out}" if spy_on else ""))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
