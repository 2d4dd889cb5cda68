"""Run Debian's ``wrk`` with ``--latency`` and parse its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    connections: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def parse(text: str, connections: int) -> WrkResult:
    pct = {int(p): float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(text)}
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not done or not rps or 50 not in pct:
        raise RuntimeError(f"cannot parse wrk output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS[done.group(3)] / 1000,
        rps=float(rps.group(1)),
        p50_ms=pct[50], p75_ms=pct.get(75, 0.0), p90_ms=pct.get(90, 0.0),
        p99_ms=pct.get(99, 0.0),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in errs.groups()) if errs else 0,
        connections=connections,
    )


def run(url: str, *, connections: int, seconds: float, script: Path | None = None,
        script_args: list[str] | None = None, threads: int | None = None,
        timeout_s: int = 10, headers: list[str] | None = None) -> WrkResult:
    threads = threads or min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={timeout_s}s",
           "--latency"]
    for header in headers or []:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse(out.stdout, connections)
