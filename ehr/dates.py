"""FHIR date, dateTime, instant and Period values as half-open microsecond ranges [low, high).

Every FHIR time value is implicitly a range given by its precision: ``2020`` is the whole year,
``2020-03-01T10:00`` the whole minute, ``...:05.25`` a hundredth of a second. Index rows and
search values both use this form so the prefix rules of the spec become comparisons of bounds.
A value with a time but no timezone is taken as UTC (the spec leaves it to the server), and so
are bare dates: that keeps the index independent of the server's locale.
Open ends (a Period without start or end) use the sentinels ``MIN_TIME``/``MAX_TIME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from ehr.instants import from_datetime

MIN_TIME = -(2**62)
MAX_TIME = 2**62
DAY = 86_400_000_000

_PATTERN = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+\- ]\d{2}:\d{2})?)?)?)?$"
)


def parse_range(text: str) -> tuple[int, int]:
    """The [low, high) range a FHIR date/dateTime/instant denotes; ValueError when malformed."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date/dateTime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if month is None:
            start = datetime(int(year), 1, 1, tzinfo=UTC)
            return from_datetime(start), _bounded(lambda: datetime(int(year) + 1, 1, 1, tzinfo=UTC))
        if day is None:
            start = datetime(int(year), int(month), 1, tzinfo=UTC)
            y, m = (int(year) + 1, 1) if int(month) == 12 else (int(year), int(month) + 1)
            return from_datetime(start), _bounded(lambda: datetime(y, m, 1, tzinfo=UTC))
        if hour is None:
            start = datetime(int(year), int(month), int(day), tzinfo=UTC)
            return from_datetime(start), from_datetime(start) + DAY
        tz = _zone(zone)
        start = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=tz)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a valid date: {text!r}") from exc
    low = from_datetime(start)
    if second is None:
        return low, low + 60_000_000
    if int(second) > 59:
        raise ValueError(f"not a valid time: {text!r}")
    low += int(second) * 1_000_000
    if fraction is None:
        return low, low + 1_000_000
    digits = fraction[:6]
    step = 10 ** (6 - len(digits))
    low += int(digits) * step
    return low, low + step


def _zone(zone: str | None) -> tzinfo:
    if zone is None or zone == "Z":
        return UTC
    # A "+" that went through form decoding arrives as a space.
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"bad timezone offset {zone!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _bounded(make: Callable[[], datetime]) -> int:
    try:
        return from_datetime(make())
    except (ValueError, OverflowError):
        return MAX_TIME


def period_range(start: str | None, end: str | None) -> tuple[int, int]:
    """The range of a Period; a missing bound is open (start of time / end of time)."""
    low = parse_range(start)[0] if start else MIN_TIME
    high = parse_range(end)[1] if end else MAX_TIME
    return low, max(high, low + 1)
