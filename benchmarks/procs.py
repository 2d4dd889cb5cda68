"""Running the service and ``ehr load`` under measurement: readiness, peak RSS via /proc, stop.

Only processes started here are signalled, by their id (the server gets its own session, so its
uvicorn workers are reached through its process group id and nothing else).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                kids += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return kids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


TICK = os.sysconf("SC_CLK_TCK")


def cpu_times(pids: list[int], task: str = "") -> tuple[float, float]:
    """User and system CPU seconds the processes (``task``: that thread of this process,
    ``pids`` then being thread ids) used so far; gone ones count nothing."""
    user = system = 0
    for pid in pids:
        path = f"/proc/self/task/{pid}/stat" if task else f"/proc/{pid}/stat"
        try:
            with open(path, encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return user / TICK, system / TICK


def cpu_seconds(pids: list[int], task: str = "") -> float:
    return sum(cpu_times(pids, task))


def worker_pids(root: int) -> list[int]:
    """uvicorn's worker processes under ``root``; ``root`` itself when it serves in-process."""
    kids = [k for k in _children(root) if "resource_tracker" not in _cmdline(k)]
    return kids or [root]


@dataclass
class RssPeak:
    """Peak resident memory of the workers over a sampling window, in MiB.

    ``per_worker``/``sum_max`` come from VmRSS samples taken during the window (the load);
    ``hwm`` is each worker's VmHWM, its peak since it started (start-up included).
    """

    per_worker_max: float = 0.0
    sum_max: float = 0.0
    per_worker: dict[int, float] = field(default_factory=dict)
    hwm: dict[int, float] = field(default_factory=dict)
    samples: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"per_worker_max_mib": round(self.per_worker_max, 1),
                "sum_max_mib": round(self.sum_max, 1),
                "per_worker_mib": {str(k): round(v, 1) for k, v in self.per_worker.items()},
                "hwm_max_mib": round(max(self.hwm.values(), default=0.0), 1),
                "hwm_mib": {str(k): round(v, 1) for k, v in self.hwm.items()},
                "samples": self.samples}


class RssSampler:
    """Samples VmRSS of every worker every ``interval`` s; reads each one's VmHWM at the end."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = RssPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in worker_pids(self.root):
            self.peak.hwm[pid] = _status_kb(pid, "VmHWM") / 1024
        if self.peak.per_worker:
            self.peak.per_worker_max = max(self.peak.per_worker.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0.0
            for pid in worker_pids(self.root):
                rss = _status_kb(pid, "VmRSS") / 1024
                total += rss
                self.peak.per_worker[pid] = max(self.peak.per_worker.get(pid, 0.0), rss)
            self.peak.sum_max = max(self.peak.sum_max, total)
            self.peak.samples += 1
            self._stop.wait(self.interval)


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/fhir+json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """``ehr serve`` on 127.0.0.1:port with the given environment, started and stopped here."""

    def __init__(self, ehr: Path, port: int, workers: int, env: dict[str, str],
                 log_path: Path) -> None:
        self.cmd = [str(ehr), "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(workers)]
        self.port = port
        self.workers = workers
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if http_get(self.port, "/healthz", 1.0)[0] == 200 and \
                        len(worker_pids(self.pid)) >= self.workers:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"server not ready after {timeout}s; see {self.log_path}")
        # Every worker answers /healthz before the measured runs start.
        for _ in range(20 * self.workers):
            http_get(self.port, "/healthz", 5.0)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # its own session: the group id is the pid we started
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class LoadRun:
    seconds: float
    max_rss_mib: float
    returncode: int
    output: str


def run_measured(cmd: list[str], env: dict[str, str], timeout: float) -> LoadRun:
    """Run a command to completion; its own peak RSS comes from wait4's rusage (KiB on Linux)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=5)
    return LoadRun(time.monotonic() - start, usage.ru_maxrss / 1024, proc.returncode,
                   b"".join(chunks).decode(errors="replace"))


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "?"
