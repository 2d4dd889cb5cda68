"""Sealing pending records: now (``settle``), or a few milliseconds after a commit, in the
background (``BackgroundSealer``, one thread per server process, woken by the recorder).

Every seal takes the chain's lock, so any number of sealers in any number of processes (each
server worker's, ``ehr audit verify``/``checkpoint``, a compliance query settling the trail
first) may run at once: they queue on the lock, and whichever comes first seals every record
committed so far, including those of a worker that was killed before its own sealer ran.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable

from sqlalchemy import Engine

from ehr.audit.sequencer import Sequencer, has_pending
from ehr.db import unit_of_work

log = logging.getLogger("ehr.audit")

Clock = Callable[[], int]


def settle(engine: Engine, sequencer: Sequencer, clock: Clock, *, look_first: bool = True,
           lock_timeout_ms: int | None = None) -> int:
    """Seal every record committed before this call; returns how many were sealed.

    ``look_first``: check without the lock whether anything waits (most calls find nothing).
    ``lock_timeout_ms``: give up (an error) rather than wait longer for a table or row lock.
    """
    if look_first:
        with unit_of_work(engine, write=False) as session:
            if not has_pending(session):
                return 0
    total = 0
    while True:
        with unit_of_work(engine) as session:
            sealed = sequencer.seal(session, clock(), lock_timeout_ms=lock_timeout_ms)
        total += sealed
        if sealed < sequencer.batch:
            return total


class BackgroundSealer:
    """Seals this process's commits in batches: ``notify`` after a commit with records.

    The thread waits ``interval_s`` after a wake-up so one seal covers the records of every
    request committed meanwhile, and ends after ``idle_s`` without work (``notify`` starts it
    again), so idle processes and test apps do not keep threads.
    """

    RETRIES = 5
    # A background seal never waits long for a lock (a schema change, a TRUNCATE by an
    # operator): it gives up, and the records wait for the next seal.
    LOCK_TIMEOUT_MS = 2000

    def __init__(self, engine: Engine, sequencer: Sequencer, clock: Clock, interval_s: float,
                 idle_s: float = 30.0) -> None:
        self.engine = engine
        self.sequencer = sequencer
        self.clock = clock
        self.interval_s = interval_s
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closing = threading.Event()
        _SEALERS.add(self)

    def notify(self) -> None:
        # Under load the thread is awake already: the flag stays set until its next seal starts,
        # and a thread never ends while it is set. Every commit calls this: no lock then.
        if self._wake.is_set() and self._thread is not None and self._pid == os.getpid():
            return
        self._wake.set()
        with self._lock:
            alive = (self._thread is not None and self._thread.is_alive()
                     and self._pid == os.getpid())
            if not alive and not self._closing.is_set():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="ehr-audit-sealer",
                                                daemon=True)
                self._thread.start()

    def _stop_thread(self) -> None:
        with self._lock:
            self._closing.set()
            thread = self._thread
        self._wake.set()
        if thread is not None and thread.is_alive():
            thread.join(timeout=10)

    def pause(self) -> None:
        """Stop the thread without sealing; the next ``notify`` starts it again."""
        self._stop_thread()
        with self._lock:
            self._closing.clear()
            self._wake.clear()

    def close(self) -> None:
        """Stop the thread and seal what is left (a graceful shutdown)."""
        self._stop_thread()
        try:
            settle(self.engine, self.sequencer, self.clock)
        except Exception:  # shutting down: the records stay pending for the next seal
            log.warning("audit sealing at shutdown failed; records stay pending", exc_info=True)

    def _run(self) -> None:
        failures = 0
        while True:
            if not self._wake.wait(self.idle_s):
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            if self._closing.wait(self.interval_s):
                return  # close() seals what is left
            self._wake.clear()
            try:
                settle(self.engine, self.sequencer, self.clock, look_first=False,
                       lock_timeout_ms=self.LOCK_TIMEOUT_MS)
                failures = 0
            except Exception:  # the records stay pending: the next seal anywhere takes them
                failures += 1
                log.warning("audit sealing failed (%d); records stay pending", failures,
                            exc_info=True)
                if failures < self.RETRIES and not self._closing.wait(0.05 * 2 ** failures):
                    self._wake.set()


_SEALERS: weakref.WeakSet[BackgroundSealer] = weakref.WeakSet()


def pause_all() -> None:
    """Stop every background sealer thread of this process (each restarts on its next commit):
    for whoever must briefly hold the audit tables alone, e.g. a test resetting its database."""
    for sealer in list(_SEALERS):
        sealer.pause()
