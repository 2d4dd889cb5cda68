"""Foundation benchmark: create/read/search throughput and latency, Observation search cost at
10 k vs 200 k stored, server and ``ehr load`` peak RSS. Run by hand (``make bench``), never in CI.

Every phase uses its own PostgreSQL database (``<prefix>_api_w2``, ``<prefix>_obs10000``, ...),
dropped and re-created here; the server listens on 127.0.0.1 only and every wrk run is bounded in
time. Results: a table on stdout and JSON under ``benchmarks/results/`` (git-ignored).
See benchmarks/README.md for the method and the targets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import explain
import procs
import wrk_run
from gen_observations import FAMILIES
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EHR = ROOT / ".venv" / "bin" / "ehr"
PYSPY = ROOT / ".venv" / "bin" / "py-spy"
# The Observation query of the 10 k vs 200 k comparison: one patient (100 Observations over two
# years, a third of them heart rates), one LOINC code, the last year.
OBS_QUERY = ("/fhir/Observation?patient=Patient/bench-p0&code=http://loinc.org%7C8867-4"
             "&date=ge2025-01-01")
PLAN_MODES = {"default": "", "force_custom_plan": "-c plan_cache_mode=force_custom_plan"}
TARGETS = {"read": 1200.0, "create": 300.0, "search": 400.0}


# -- databases ---------------------------------------------------------------------------------

def fresh_database(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def maintain(url: str, statement: str) -> None:
    """Run a statement that cannot run in a transaction (ANALYZE, VACUUM)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def analyze(url: str) -> None:
    maintain(url, "ANALYZE")


def vacuum_audit_queue(url: str) -> None:
    """The audit queue gains a dead row per audited request; production's autovacuum clears it
    after 2,000 (its migration sets that), and these machines run with autovacuum off."""
    maintain(url, "VACUUM audit_pending")


def env_for(url: str, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EHR_DATABASE_URL=url, EHR_VAR_DIR=str(var_dir), EHR_LOG_LEVEL="warning")
    # The foundation benchmark measures the store and REST paths without access control
    # (ehr.config.Settings.auth_required documents this switch as benchmark-only).
    env.setdefault("EHR_AUTH_REQUIRED", "false")
    env.pop("EHR_PROGRESS", None)
    return env


# -- API phase ---------------------------------------------------------------------------------

def seed_patients(port: int, count: int, seed: int = 7) -> list[str]:
    """Create ``count`` Patients over HTTP (one keep-alive connection); return their ids."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids = []
    try:
        for i in range(count):
            body = {"resourceType": "Patient", "active": True,
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1",
                                    "value": f"{800000000 + i}"}],
                    "name": [{"use": "official", "family": rng.choice(FAMILIES),
                              "given": [rng.choice(["Ann", "Bob", "Cleo", "Dev", "Eva"])]}],
                    "gender": rng.choice(["female", "male"]),
                    "birthDate": f"{rng.randrange(1940, 2005)}-0{rng.randrange(1, 10)}-1"
                                 f"{rng.randrange(0, 10)}"}
            conn.request("POST", "/fhir/Patient", json.dumps(body),
                         {"Content-Type": "application/fhir+json"})
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 201:
                raise RuntimeError(f"seeding failed: HTTP {resp.status} {payload[:300]!r}")
            ids.append(json.loads(payload)["id"])
    finally:
        conn.close()
    return ids


def name_prefixes() -> list[str]:
    """3 to 5 letter prefixes of the family names the seeded Patients carry."""
    out = {f[:n].lower() for f in FAMILIES for n in (3, 4, 5) if len(f) >= n}
    return sorted(out)


def profile(worker: int, seconds: float, out: Path) -> str:
    """py-spy record one worker while load runs elsewhere; returns the summary text."""
    cmd = [str(PYSPY), "record", "-r", "100", "-f", "raw", "-o", str(out), "-p", str(worker),
           "-d", str(int(seconds)), "--gil"]
    # --gil: only the thread holding the GIL is sampled, so idle pool threads and waits on the
    # database drop out and the shares are of Python CPU time. Not --nonblocking: without
    # pausing the process py-spy misses nearly every sample here.
    subprocess.run(cmd, capture_output=True, timeout=seconds + 60, check=False)
    if not out.exists():
        return "py-spy produced nothing (ptrace not permitted?)"
    import profile_summary

    samples, own, total = profile_summary.summarise(out.read_text().splitlines())
    return profile_summary.render(samples, own, total, 30, None) if samples else "no samples"


def api_phase(args: argparse.Namespace, workers: int, outdir: Path) -> dict[str, Any]:
    url = fresh_database(args.admin_url, f"{args.db_prefix}_api_w{workers}")
    data = outdir / f"api_w{workers}"
    data.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"workers": workers, "database": url.rsplit("/", 1)[-1]}
    base = f"http://127.0.0.1:{args.port}"
    server = procs.Server(EHR, args.port, workers, env_for(url, data), data / "server.log")
    with server:
        t0 = time.monotonic()
        ids = seed_patients(args.port, args.patients)
        result["seed_patients_per_s"] = round(len(ids) / (time.monotonic() - t0), 1)
        (data / "ids.txt").write_text("\n".join(ids) + "\n")
        (data / "prefixes.txt").write_text("\n".join(name_prefixes()) + "\n")
        analyze(url)
        scripts = {
            "read": (HERE / "wrk" / "read.lua", [str(data / "ids.txt")]),
            "search": (HERE / "wrk" / "search.lua", [str(data / "prefixes.txt")]),
            "create": (HERE / "wrk" / "create.lua", []),  # last: it grows the Patient table
        }
        for name, (script, sargs) in scripts.items():
            if args.only and name not in args.only:
                continue
            print(f"  [{workers} workers] {name}: warm-up {args.warmup}s, c=8 {args.duration}s, "
                  f"c=1 {args.c1_duration}s  (load {procs.load_average()})", flush=True)
            wrk_run.run(base, connections=8, seconds=args.warmup, script=script,
                        script_args=sargs)
            load_before = procs.load_average()
            with procs.RssSampler(server.pid) as sampler:
                c8 = wrk_run.run(base, connections=8, seconds=args.duration, script=script,
                                 script_args=sargs)
            c1 = wrk_run.run(base, connections=1, seconds=args.c1_duration, script=script,
                             script_args=sargs, threads=1)
            entry: dict[str, Any] = {"c8": c8.as_dict(), "c1": c1.as_dict(),
                                     "rss": sampler.peak.as_dict(), "load_before": load_before}
            if args.profile and workers == args.workers[0]:
                pids = procs.worker_pids(server.pid)
                raw = data / f"profile_{name}.raw"
                runner = subprocess.Popen(
                    ["wrk", "-t2", "-c8", f"-d{args.profile_seconds + 4}s", "-s", str(script),
                     base, "--", *sargs], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(2)
                entry["profile"] = profile(pids[0], args.profile_seconds, raw)
                runner.wait(timeout=args.profile_seconds + 60)
                (data / f"profile_{name}.txt").write_text(entry["profile"])
            result[name] = entry
    return result


# -- Observation scaling phase -----------------------------------------------------------------

def ensure_file(path: Path, observations: int, per_patient: int) -> None:
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "gen_observations.py"), "-n", str(observations),
                    "--per-patient", str(per_patient), str(path)], check=True)


def python_latency(port: int, path: str, requests: int, warmup: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    try:
        for i in range(warmup + requests):
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"Accept": "application/fhir+json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: HTTP {resp.status}")
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    times.sort()
    return {"n": len(times), "p50_ms": round(statistics.median(times), 3),
            "p90_ms": round(times[int(len(times) * 0.9) - 1], 3),
            "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
            "mean_ms": round(statistics.fmean(times), 3)}


def obs_phase(args: argparse.Namespace, size: int, outdir: Path) -> dict[str, Any]:
    name = f"{args.db_prefix}_obs{size}"
    data = outdir / f"obs{size}"
    data.mkdir(parents=True, exist_ok=True)
    ndjson = Path(args.data_dir) / f"observations-{size}-pp{args.per_patient}.ndjson"
    ensure_file(ndjson, size, args.per_patient)
    result: dict[str, Any] = {"observations": size, "file_bytes": ndjson.stat().st_size,
                              "database": name}
    admin = make_url(args.admin_url)
    url = admin.set(database=name).render_as_string(hide_password=False)
    env = env_for(url, data)
    if args.reuse_obs and _observation_count(url) >= size:
        result["load"] = "reused existing database (not re-loaded)"
    else:
        url = fresh_database(args.admin_url, name)
        print(f"  ehr load {ndjson.name} ({result['file_bytes'] / 1e6:.0f} MB) "
              f"(load {procs.load_average()})", flush=True)
        run = procs.run_measured([str(EHR), "load", str(ndjson)], env, timeout=args.load_timeout)
        (data / "load.log").write_text(run.output)
        if run.returncode != 0:
            raise RuntimeError(f"ehr load failed ({run.returncode}): {run.output[-2000:]}")
        resources = size + -(-size // args.per_patient)
        result["load"] = {"seconds": round(run.seconds, 1), "resources": resources,
                          "resources_per_s": round(resources / run.seconds, 1),
                          "max_rss_mib": round(run.max_rss_mib, 1)}
    stats_before = _explain_summary(url)
    result["plan_before_analyze"] = stats_before
    analyze(url)
    result["plan"] = _explain_summary(url)
    # psycopg prepares a statement server-side after 5 executions and PostgreSQL may then switch
    # to a generic plan; the second mode shows what forcing custom plans gives.
    for mode, pgoptions in PLAN_MODES.items():
        mode_env = dict(env)
        if pgoptions:
            mode_env["PGOPTIONS"] = pgoptions
        with procs.Server(EHR, args.port, 1, mode_env, data / f"server-{mode}.log"):
            loop = python_latency(args.port, OBS_QUERY, args.obs_requests, 30)
            c1 = wrk_run.run(f"http://127.0.0.1:{args.port}{OBS_QUERY}", connections=1,
                             seconds=args.c1_duration, threads=1).as_dict()
        if mode == "default":
            result["python_loop"], result["wrk_c1"] = loop, c1
        else:
            result[mode] = {"python_loop": loop, "wrk_c1": c1}
    return result


def _observation_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM resource WHERE rtype = 'Observation'")).scalar_one())
    except Exception:  # the database does not exist yet
        return -1
    finally:
        engine.dispose()


def _explain_summary(url: str) -> list[dict[str, Any]]:
    items = explain.explain(url, OBS_QUERY.removeprefix("/fhir/"))
    return [{k: v for k, v in item.items() if k != "params"} for item in items]


# -- report ------------------------------------------------------------------------------------

def table(results: dict[str, Any]) -> str:
    lines = ["", "scenario        workers  rps(c8)  p50(c8)  p99(c8)  p50(c1)  non2xx  "
             "RSS max/worker  RSS sum  HWM/worker  target"]
    for api in results.get("api", []):
        for name in ("read", "create", "search"):
            if name not in api:
                continue
            e = api[name]
            ok = "OK" if e["c8"]["rps"] >= TARGETS[name] else "MISS"
            lines.append(
                f"{name:<15} {api['workers']:>7}  {e['c8']['rps']:>7.0f}  "
                f"{e['c8']['p50_ms']:>6.2f}ms {e['c8']['p99_ms']:>6.2f}ms "
                f"{e['c1']['p50_ms']:>6.2f}ms  "
                f"{e['c8']['non_2xx'] + e['c1']['non_2xx']:>6}  "
                f"{e['rss']['per_worker_max_mib']:>10.0f} MiB {e['rss']['sum_max_mib']:>5.0f} MiB"
                f" {e['rss'].get('hwm_max_mib', 0):>6.0f} MiB"
                f"  >={TARGETS[name]:.0f} {ok}")
    obs = results.get("observations", [])
    if obs:
        lines += ["", "Observation?patient=&code=&date=ge   p50 (python loop)  p50 (wrk c1)  "
                  "ehr load: rate, peak RSS"]
        for o in obs:
            load = o["load"]
            load_text = (f"{load['resources_per_s']:.0f} res/s, {load['max_rss_mib']:.0f} MiB"
                         if isinstance(load, dict) else str(load))
            lines.append(f"  {o['observations']:>7} stored{'':17} "
                         f"{o['python_loop']['p50_ms']:>8.2f}ms  "
                         f"{o['wrk_c1']['p50_ms']:>8.2f}ms   {load_text}")
        for o in obs:
            custom = o.get("force_custom_plan")
            if custom:
                lines.append(f"  {o['observations']:>7} stored, force_custom_plan  "
                             f"{custom['python_loop']['p50_ms']:>8.2f}ms  "
                             f"{custom['wrk_c1']['p50_ms']:>8.2f}ms")
        if len(obs) >= 2:
            ratio = obs[-1]["python_loop"]["p50_ms"] / obs[0]["python_loop"]["p50_ms"]
            lines.append(f"  ratio {obs[-1]['observations']}/{obs[0]['observations']}: "
                         f"{ratio:.2f} (target < 1.5)")
            results["obs_ratio"] = round(ratio, 3)
            if all("force_custom_plan" in o for o in (obs[0], obs[-1])):
                custom = (obs[-1]["force_custom_plan"]["python_loop"]["p50_ms"]
                          / obs[0]["force_custom_plan"]["python_loop"]["p50_ms"])
                lines.append(f"  ratio with force_custom_plan: {custom:.2f}")
                results["obs_ratio_force_custom_plan"] = round(custom, 3)
    return "\n".join(lines)


def _git_state() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "changed_files": git("status", "--porcelain").splitlines(),
            "auth_required": os.environ.get("EHR_AUTH_REQUIRED", "false")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get(
        "BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--db-prefix", default="bench_foundation")
    parser.add_argument("--port", type=int, default=18480)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[2, 3])
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--c1-duration", type=float, default=10)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--only", nargs="*", choices=["read", "create", "search"])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10_000, 200_000])
    parser.add_argument("--per-patient", type=int, default=100)
    parser.add_argument("--obs-requests", type=int, default=300)
    parser.add_argument("--data-dir", default="/tmp/ehr-bench-data",
                        help="where the generated NDJSON files are kept between runs")
    parser.add_argument("--reuse-obs", action="store_true",
                        help="keep an already loaded Observation database instead of reloading")
    parser.add_argument("--load-timeout", type=float, default=3600)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-obs", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy a worker under load after each measured scenario")
    parser.add_argument("--profile-seconds", type=float, default=15)
    args = parser.parse_args(argv)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = HERE / "results" / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": stamp, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                      "kernel": platform.release(),
                                      "load_at_start": procs.load_average(),
                                      "note": "wrk shares the CPUs with the server and PostgreSQL"},
        "settings": {k: v for k, v in vars(args).items() if k != "admin_url"},
        "code": _git_state(),
        "api": [], "observations": []}
    out_json = HERE / "results" / f"{stamp}.json"
    try:
        if not args.skip_api:
            for workers in args.workers:
                print(f"API phase, {workers} workers", flush=True)
                results["api"].append(api_phase(args, workers, outdir))
                out_json.write_text(json.dumps(results, indent=2))
        if not args.skip_obs:
            for size in args.sizes:
                print(f"Observation phase, {size} stored", flush=True)
                results["observations"].append(obs_phase(args, size, outdir))
                out_json.write_text(json.dumps(results, indent=2))
    finally:
        report = table(results)
        results["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out_json.write_text(json.dumps(results, indent=2))
        print(report)
        print(f"\nJSON: {out_json}\nlogs and profiles: {outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
