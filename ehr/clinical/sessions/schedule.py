"""The monitoring schedule of a session: which measurements are due, done or overdue.

The route's protocol gives the time points (IV: every 10 minutes during the infusion, every 15
after; esketamine: before dosing, at 40 minutes, before discharge). A timed point is done by a
reading within ``tolerance`` minutes either side of it, and overdue once that window has
passed without one. ``now_us`` is an argument so the computation can be checked at any time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehr.clinical.sessions.measures import MEASUREMENT_OF
from ehr.clinical.sessions.phases import phase_of
from ehr.clinical.sessions.timeline import Reading, Timeline, parse_time

MINUTE_US = 60_000_000
# Points further than this are not listed: a schedule is read during a session, not planned.
_MAX_POINTS = 500


@dataclass(frozen=True)
class ScheduleItem:
    label: str  # "pre-dose", "during-infusion", "post-dose", "before-discharge"
    measurement: str  # a key of MEASUREMENT_OF
    due_us: int | None  # None: not yet known (no dose given)
    status: str  # "done" | "due" | "overdue"
    done_us: int | None = None


def _measured(reading: Reading, measurement: str) -> bool:
    return all(k in reading.values for k in MEASUREMENT_OF[measurement])


def _discharged_at(tl: Timeline) -> int | None:
    encounter = tl.records.encounter
    if phase_of(encounter) != "discharged":
        return None
    return parse_time((encounter.get("period") or {}).get("end"))


def _timed(tl: Timeline, label: str, measurement: str, due: int, tol: int,
           now_us: int) -> ScheduleItem:
    hit = next((r for r in tl.readings if _measured(r, measurement)
                and due - tol <= r.at_us <= due + tol), None)
    if hit is not None:
        return ScheduleItem(label, measurement, due, "done", hit.at_us)
    return ScheduleItem(label, measurement, due, "overdue" if now_us > due + tol else "due")


def _every(first: int, step: int, last: int) -> list[int]:
    out: list[int] = []
    t = first + step
    while t <= last and len(out) < _MAX_POINTS:
        out.append(t)
        t += step
    return out


def schedule_for(tl: Timeline, now_us: int, tolerance_minutes: int) -> list[ScheduleItem]:
    """Every scheduled measurement of the session, in time order (unknown times last)."""
    route = tl.route
    tol = tolerance_minutes * MINUTE_US
    items: list[ScheduleItem] = []
    start, end = tl.dosing_start, tl.dosing_end
    discharged = _discharged_at(tl)
    # While the session is open, list the points up to the next one still to come.
    horizon = discharged if discharged is not None else now_us

    for measurement in route.pre_dose:
        hit = next((r for r in tl.readings if _measured(r, measurement)
                    and (start is None or r.at_us < start)), None)
        if hit is not None:
            items.append(ScheduleItem("pre-dose", measurement, start, "done", hit.at_us))
        else:
            items.append(ScheduleItem("pre-dose", measurement, start,
                                      "overdue" if start is not None else "due"))
    if start is None:
        return items

    for measurement in route.timed:
        if route.during_infusion_every:
            step = route.during_infusion_every * MINUTE_US
            last = end if end is not None else horizon + step
            for due in _every(start, step, last):
                items.append(_timed(tl, "during-infusion", measurement, due, tol, now_us))
        for minutes in route.after_dose_at:
            due = start + minutes * MINUTE_US
            items.append(_timed(tl, "post-dose", measurement, due, tol, now_us))
        if route.after_dose_every and end is not None:
            step = route.after_dose_every * MINUTE_US
            last = discharged if discharged is not None else max(horizon, end) + step
            for due in _every(end, step, last):
                items.append(_timed(tl, "post-dose", measurement, due, tol, now_us))

    earliest = tl.earliest_discharge()
    for measurement in route.before_discharge:
        if earliest is None:
            items.append(ScheduleItem("before-discharge", measurement, None, "due"))
            continue
        hit = next((r for r in reversed(tl.readings) if _measured(r, measurement)
                    and r.at_us >= earliest - tol
                    and (discharged is None or r.at_us <= discharged)), None)
        if hit is not None:
            items.append(ScheduleItem("before-discharge", measurement, earliest, "done",
                                      hit.at_us))
        else:
            items.append(ScheduleItem("before-discharge", measurement, earliest,
                                      "overdue" if discharged is not None else "due"))
    return sorted(items, key=lambda i: (i.due_us is None, i.due_us or 0))
