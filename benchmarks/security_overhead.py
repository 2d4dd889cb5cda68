"""What access control and the audit trail cost: read/create throughput in one run, three ways.

    A  EHR_AUTH_REQUIRED=false, EHR_AUDIT_ENABLED=false   (the foundation alone)
    B  bearer tokens + policy,  EHR_AUDIT_ENABLED=false   (issue 3: B >= 85 % of A)
    C  bearer tokens + policy + audit trail               (issue 4: C >= 80 % of B for reads,
                                                            >= 85 % for creates)

Same database, same data, server with 2 workers on PostgreSQL, wrk at 8 connections. The
patients are created by a physician (so they sit on that physician's care team) and read with
that physician's token. Run by hand: ``.venv/bin/python benchmarks/security_overhead.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import procs
import wrk_run
from measure import EHR, HERE, ROOT, fresh_database

USER, PASSWORD = "bench-physician", "bench-physician-password"


def _env(url: str, var: Path, *, auth: bool, audit: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EHR_DATABASE_URL=url, EHR_VAR_DIR=str(var), EHR_LOG_LEVEL="warning",
               EHR_AUTH_REQUIRED=str(auth).lower(), EHR_AUDIT_ENABLED=str(audit).lower())
    return env


def _token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urllib.parse.urlencode({"grant_type": "password", "username": USER,
                                   "password": PASSWORD})
    conn.request("POST", "/auth/token", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"token: {resp.status} {payload}")
    return str(payload["access_token"])


def _seed(port: int, token: str, count: int) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids = []
    for i in range(count):
        body = {"resourceType": "Patient", "name": [{"family": f"Bench{i % 50}"}],
                "gender": "female", "birthDate": "1980-01-01"}
        conn.request("POST", "/fhir/Patient", json.dumps(body),
                     {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 201:
            raise RuntimeError(f"seed: {resp.status} {payload[:200]!r}")
        ids.append(json.loads(payload)["id"])
    return ids


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--port", type=int, default=18490)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--patients", type=int, default=500)
    args = parser.parse_args()
    url = fresh_database(args.admin_url, "bench_security_overhead")
    work = Path("/tmp/ehr-bench-security")
    work.mkdir(parents=True, exist_ok=True)
    var = work / "var"
    env_c = _env(url, var, auth=True, audit=True)
    subprocess.run([str(EHR), "db", "upgrade"], env=env_c, check=True)
    subprocess.run([str(EHR), "user", "create", USER, "--role", "physician", "--password-stdin"],
                   input=PASSWORD + "\n", text=True, env=env_c, check=True)
    # B first: its physician creates the patients, so they are on that physician's care team.
    configs = {"B": (True, False), "A": (False, False), "C": (True, True)}
    results: dict[str, dict[str, float]] = {}
    ids_file = work / "ids.txt"
    for name, (auth, audit) in configs.items():
        env = _env(url, var, auth=auth, audit=audit)
        with procs.Server(EHR, args.port, 2, env, work / f"server_{name}.log"):
            token = _token(args.port)
            if name == "B":
                ids_file.write_text("\n".join(_seed(args.port, token, args.patients)) + "\n")
            headers = [f"Authorization: Bearer {token}"] if auth else []
            base = f"http://127.0.0.1:{args.port}"
            row: dict[str, float] = {}
            for kind, script, sargs in (("read", HERE / "wrk" / "read.lua", [str(ids_file)]),
                                        ("create", HERE / "wrk" / "create.lua", [])):
                wrk_run.run(base, connections=8, seconds=3, script=script, script_args=sargs,
                            headers=headers)
                res = wrk_run.run(base, connections=8, seconds=args.seconds, script=script,
                                  script_args=sargs, headers=headers)
                row[kind] = res.rps
                row[f"{kind}_non2xx"] = res.non_2xx
                print(f"{name} {kind}: {res.rps:.0f} req/s "
                      f"(p50 {res.p50_ms} ms, p99 {res.p99_ms} ms, non-2xx {res.non_2xx}) "
                      f"load {procs.load_average()}", flush=True)
            results[name] = row
    a, b, c = results["A"], results["B"], results["C"]
    print(f"auth cost:  read B/A = {b['read'] / a['read']:.2f} (target >= 0.85)")
    print(f"audit cost: read C/B = {c['read'] / b['read']:.2f} (target >= 0.80), "
          f"create C/B = {c['create'] / b['create']:.2f} (target >= 0.85)")
    (HERE / "results").mkdir(exist_ok=True)
    out = HERE / "results" / f"security_overhead_{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
