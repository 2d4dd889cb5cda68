"""The monitoring schedule at controlled times: due, done and overdue points per route."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.sessions.timelines import make, reading, us
from ehr.clinical.sessions.schedule import ScheduleItem, schedule_for

TOL = 5
BP = {"systolic": 120, "diastolic": 80}


def _status(items: list[ScheduleItem], label: str) -> list[tuple[float, str]]:
    return [((i.due_us - us(0)) / 60_000_000 if i.due_us is not None else -1, i.status)
            for i in items if i.label == label and i.measurement == "blood-pressure"]


def test_esketamine_before_40_and_discharge() -> None:
    tl = make("esketamine", [reading(-10, **BP), reading(41, **BP)])
    items = schedule_for(tl, us(60), TOL)
    assert _status(items, "pre-dose") == [(0, "done")]
    assert _status(items, "post-dose") == [(40, "done")]
    assert _status(items, "before-discharge") == [(120, "due")]


def test_esketamine_overdue_after_the_window() -> None:
    tl = make("esketamine", [])
    assert _status(schedule_for(tl, us(45), TOL), "post-dose") == [(40, "due")]
    assert _status(schedule_for(tl, us(46), TOL), "post-dose") == [(40, "overdue")]
    assert _status(schedule_for(tl, us(46), TOL), "pre-dose") == [(0, "overdue")]


def test_before_discharge_overdue_once_discharged_without_it() -> None:
    tl = make("esketamine", [reading(41, **BP)], phase="discharged", discharged=130)
    assert _status(schedule_for(tl, us(140), TOL), "before-discharge") == [(120, "overdue")]
    tl = make("esketamine", [reading(121, **BP)], phase="discharged", discharged=130)
    assert _status(schedule_for(tl, us(140), TOL), "before-discharge") == [(120, "done")]


def test_iv_every_10_during_every_15_after() -> None:
    tl = make("iv", [reading(10, **BP), reading(21, **BP), reading(29, **BP)], end=40)
    items = schedule_for(tl, us(70), TOL)
    assert _status(items, "during-infusion") == [(10, "done"), (20, "done"), (30, "done"),
                                                 (40, "overdue")]
    assert _status(items, "post-dose") == [(55, "overdue"), (70, "due"), (85, "due")]
    pre = [i for i in items if i.label == "pre-dose"]
    assert {i.measurement for i in pre} == {"blood-pressure", "heart-rate", "spo2",
                                           "respiratory-rate"}
    assert all(i.status == "overdue" for i in pre)


def test_running_infusion_lists_the_next_point() -> None:
    tl = make("iv", [reading(10, **BP)])
    items = schedule_for(tl, us(26), TOL)
    assert _status(items, "during-infusion") == [(10, "done"), (20, "overdue"), (30, "due")]
    assert _status(items, "before-discharge") == [(-1, "due")]


def test_no_dose_yet_only_pre_dose() -> None:
    tl = make(None, [reading(-5, **BP, heart_rate=70)])
    items = schedule_for(tl, us(0), TOL)
    assert {i.label for i in items} == {"pre-dose"}
    statuses = {i.measurement: i.status for i in items}
    assert statuses["blood-pressure"] == "done" and statuses["heart-rate"] == "done"
    assert statuses["spo2"] == "due"


@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.integers(1, 200), max_size=12), now=st.integers(0, 240))
def test_done_iff_reading_in_window(times: list[int], now: int) -> None:
    tl = make("iv", [reading(t, **BP) for t in times], end=60)
    for item in schedule_for(tl, us(now), TOL):
        if item.label not in ("during-infusion", "post-dose") or item.due_us is None:
            continue
        due = (item.due_us - us(0)) // 60_000_000
        hit = any(abs(t - due) <= TOL for t in times)
        if hit:
            assert item.status == "done"
        else:
            assert item.status == ("overdue" if now > due + TOL else "due")
