"""Splitting a PostgreSQL verification pass over processes.

The chain 1..total is cut into contiguous seq ranges, one per worker. This process checks the
first range itself; each other one goes to a ``python -m ehr.audit.verify_range`` child (a
light process: psycopg, orjson and the standard library) that joins this transaction's
snapshot (``pg_export_snapshot``), so every worker sees exactly the rows this pass sees. A
range checks everything about its records except the first one's link to the previous range;
``merge`` checks those links in order and returns where the verified prefix of the chain ends,
which is where the exact pass (``verify``) takes over if the chain is damaged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import IO, Any

from sqlalchemy import Connection

from ehr.audit.canonical import GENESIS
from ehr.audit.verify_range import RangeResult, scan
from ehr.errors import ServiceUnavailable

# Below this many records per range another process costs more than it saves.
MIN_RANGE = 50_000


class VerifyWorkerFailed(ServiceUnavailable):
    """A worker process could not check its range (connection lost, killed, ...)."""


@dataclass
class ChainState:
    """Where the verified prefix of the chain ends: the next seq expected, the hashes of the
    last two records, and the last checkpoint seq that agreed."""

    expected: int = 1
    prev: str = GENESIS
    prev_prev: str = ""
    agreed: int = 0


def plan(total: int, workers: int, min_range: int = MIN_RANGE) -> list[tuple[int, int]]:
    """Contiguous ranges covering 1..total, at most ``workers`` of them."""
    if total <= 0:
        return []
    count = max(1, min(workers, total // max(1, min_range)))
    size = -(-total // count)
    return [(a, min(total, a + size - 1)) for a in range(1, total + 1, size)]


def merge(results: Sequence[RangeResult]) -> tuple[ChainState, bool]:
    """The state after the longest verified prefix, and whether it covers every range."""
    state = ChainState()
    for r in results:
        if r.verified == 0 or r.first != state.expected or r.first_prev != state.prev:
            return state, False
        assert r.last_hash is not None
        state = ChainState(expected=r.first + r.verified, prev=r.last_hash,
                           prev_prev=r.before_last if r.before_last is not None else state.prev,
                           agreed=r.agreed or state.agreed)
        if not r.complete:
            return state, False
    return state, True


def run_ranges(conn: Connection, ranges: Sequence[tuple[int, int]],
               pins: Mapping[int, Sequence[str]], every: int,
               progress: Callable[[int], None] | None) -> list[RangeResult]:
    """Check every range: the first here, the others in child processes."""
    dbapi: Any = conn.connection.dbapi_connection
    if not ranges:
        return []
    if len(ranges) == 1:
        first, last = ranges[0]
        return [scan(dbapi, first, last, pins, progress, every)]
    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
    conninfo = conn.engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False)
    done = [0] * len(ranges)
    lock = threading.Lock()

    def report(index: int, count: int) -> None:
        with lock:
            done[index] = count
            total = sum(done)
        if progress is not None:
            progress(total)

    children = [_Child(conninfo, snapshot, a, b, pins, every,
                       lambda n, i=i: report(i, n))  # type: ignore[misc]
                for i, (a, b) in enumerate(ranges[1:], start=1)]
    try:
        own = scan(dbapi, ranges[0][0], ranges[0][1], pins,
                   lambda n: report(0, n), every)
        return [own, *(child.result() for child in children)]
    finally:
        for child in children:
            child.close()


class _Child:
    """One worker process and the thread that reads what it says."""

    def __init__(self, conninfo: str, snapshot: str, first: int, last: int,
                 pins: Mapping[int, Sequence[str]], every: int,
                 progress: Callable[[int], None]) -> None:
        job = {"conninfo": conninfo, "snapshot": snapshot, "first": first, "last": last,
               "every": every,
               "pins": {str(s): list(h) for s, h in pins.items() if first <= s <= last}}
        self.range = (first, last)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ehr.audit.verify_range"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": _import_root()})
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.close()
        self.outcome: RangeResult | None = None
        self.reader = threading.Thread(target=self._read, args=(progress,), daemon=True,
                                       name=f"audit-verify-{first}")
        self.reader.start()

    def _read(self, progress: Callable[[int], None]) -> None:
        out: IO[str] | None = self.process.stdout
        assert out is not None
        for line in out:
            kind, _, data = line.rstrip("\n").partition(" ")
            if kind == "p":
                progress(int(data))
            elif kind == "r":
                known = {f.name for f in fields(RangeResult)}
                self.outcome = RangeResult(**{k: v for k, v in json.loads(data).items()
                                              if k in known})

    def result(self) -> RangeResult:
        code = self.process.wait()
        self.reader.join()
        if code != 0 or self.outcome is None:
            err = self.process.stderr.read() if self.process.stderr else ""
            last = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
            raise VerifyWorkerFailed(
                f"verifying seq {self.range[0]}..{self.range[1]} failed: {last}")
        return self.outcome

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            deadline = time.monotonic() + 5
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _import_root() -> str:
    """The directory ``ehr`` is imported from, so the child finds the same code."""
    import ehr

    root = os.path.dirname(os.path.dirname(os.path.abspath(ehr.__file__)))
    existing = os.environ.get("PYTHONPATH")
    return root if not existing else os.pathsep.join([root, existing])
