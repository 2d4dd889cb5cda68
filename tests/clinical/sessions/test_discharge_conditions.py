"""Each discharge condition on both sides of its limit (in memory, controlled time)."""

from __future__ import annotations

from typing import Any

import pytest

from clinical.sessions.timelines import make, reading, us
from ehr.clinical.sessions.discharge import Checklist, discharge_problems
from ehr.clinical.sessions.protocol import default_protocol

BASE = {"systolic": 120, "diastolic": 80, "heart_rate": 70, "spo2": 98}
OK = Checklist(True, True, True, "Alex")


def problems(route: str = "esketamine", *, last: dict[str, Any] | None = None,
             last_at: float = 110, now: float = 125, end: float | None = None,
             checklist: Checklist = OK) -> list[str]:
    after = {**BASE, "moaas": 5, **(last or {})}
    tl = make(route, [reading(-10, **BASE), reading(last_at, **after)], end=end)
    return discharge_problems(tl, checklist, default_protocol(), us(now))


def test_all_conditions_met() -> None:
    assert problems() == []


def test_minimum_observation_esketamine_two_hours() -> None:
    assert problems(now=120) == []
    found = problems(now=119.99)
    assert len(found) == 1 and "minimum observation time" in found[0]


def test_minimum_observation_other_routes_protocol_default() -> None:
    # IV: 60 minutes after the infusion ended (protocol default).
    assert problems("iv", end=40, last_at=95, now=100) == []
    assert any("minimum observation" in p for p in problems("iv", end=40, last_at=95, now=99))


def test_running_infusion_and_no_dose() -> None:
    assert any("still running" in p for p in problems("iv", end=None))
    tl = make(None, [reading(-10, **BASE)])
    found = discharge_problems(tl, OK, default_protocol(), us(300))
    assert "no dose is recorded for this session" in found


def test_last_vitals_must_be_recent() -> None:
    assert problems(last_at=95, now=125) == []
    assert any("older than 30 min" in p for p in problems(last_at=94, now=125))


@pytest.mark.parametrize(("measure", "fine", "bad", "words"), [
    ("systolic", 144, 145, "within 20% of the pre-dose baseline 120"),
    ("diastolic", 96, 97, "within 20% of the pre-dose baseline 80"),
    ("heart_rate", 56, 55, "within 20% of the pre-dose baseline 70"),
])
def test_near_baseline(measure: str, fine: float, bad: float, words: str) -> None:
    assert problems(last={measure: fine}) == []
    found = problems(last={measure: bad})
    assert len(found) == 1 and words in found[0]


@pytest.mark.parametrize(("measure", "bad"), [("spo2", 91), ("heart_rate", 121),
                                              ("systolic", 181), ("diastolic", 111)])
def test_last_vitals_within_thresholds(measure: str, bad: float) -> None:
    found = problems(last={measure: bad})
    assert any("session monitoring threshold" in p for p in found), found


def test_moaas_must_be_5() -> None:
    found = problems(last={"moaas": 4})
    assert found == ["last MOAA/S is 4, not 5"]


@pytest.mark.parametrize(("checklist", "reason"), [
    (Checklist(True, False, True), "no escort is confirmed"),
    (Checklist(False, True, True), "the patient is not alert and oriented"),
    (Checklist(True, True, False), "no driving until the next day is not acknowledged"),
])
def test_checklist(checklist: Checklist, reason: str) -> None:
    assert problems(checklist=checklist) == [reason]


def test_every_reason_listed() -> None:
    found = problems(last={"moaas": 3, "spo2": 90}, now=100,
                     checklist=Checklist(False, False, False))
    assert len(found) == 6, found
    assert "last MOAA/S is 3, not 5" in found
