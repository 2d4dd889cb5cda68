"""The time source of the auth package, injectable so tests move time instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

# Seconds since the Unix epoch (UTC), as a float.
Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def to_micros(seconds: float) -> int:
    """The store's time unit: integer microseconds since the epoch."""
    return int(seconds * 1_000_000)
