"""Theft/loss deadlines: 1 business day (weekends and listed holidays skipped) and 45 days."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.clinical.ledger.protocol import ProtocolError, load_protocol, parse_protocol
from ehr.instants import to_datetime

UTC = dt.UTC


def _due(us: int) -> str:
    return to_datetime(us).strftime("%a %Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(("discovered", "due"), [
    ("2026-03-02T09:00:00+00:00", "Tue 2026-03-03 23:59:59"),  # Monday -> Tuesday
    ("2026-03-05T23:30:00+00:00", "Fri 2026-03-06 23:59:59"),  # Thursday -> Friday
    ("2026-03-06T10:00:00+00:00", "Mon 2026-03-09 23:59:59"),  # Friday -> over the weekend
    ("2026-03-07T10:00:00+00:00", "Mon 2026-03-09 23:59:59"),  # Saturday -> Monday
    ("2026-03-08T23:59:00+00:00", "Mon 2026-03-09 23:59:59"),  # Sunday -> Monday
])
def test_dea_notice_is_due_the_next_business_day(discovered: str, due: str) -> None:
    protocol = load_protocol()
    assert _due(protocol.dea_notice_due(dt.datetime.fromisoformat(discovered))) == due


def test_holidays_and_time_zones_count() -> None:
    base = load_protocol()
    thursday = dt.datetime(2026, 7, 2, 15, 0, tzinfo=UTC)
    with_holiday = replace(base, holidays=frozenset({dt.date(2026, 7, 3)}))
    assert _due(with_holiday.dea_notice_due(thursday)) == "Mon 2026-07-06 23:59:59"
    # 01:00 UTC on a Saturday is still Friday evening in Chicago: due Monday there.
    chicago = replace(base, timezone="America/Chicago")
    saturday_utc = dt.datetime(2026, 3, 7, 1, 0, tzinfo=UTC)
    due = to_datetime(chicago.dea_notice_due(saturday_utc)).astimezone(chicago.zone)
    assert due.strftime("%a %Y-%m-%d %H:%M") == "Mon 2026-03-09 23:59"


def test_form_106_is_due_45_days_after_discovery() -> None:
    protocol = load_protocol()
    discovered = dt.datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    assert _due(protocol.form_106_due(discovered)) == "Mon 2026-04-20 23:59:59"


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_notice_deadline_is_a_weekday_within_three_days(discovered: dt.datetime) -> None:
    protocol = load_protocol()
    due = to_datetime(protocol.dea_notice_due(discovered))
    assert due.weekday() < 5
    assert due > discovered
    days = (due.date() - discovered.date()).days
    assert days == (3 if discovered.weekday() == 4 else 2 if discovered.weekday() == 5 else 1)


def test_a_malformed_protocol_is_refused() -> None:
    with pytest.raises(ProtocolError):
        parse_protocol({"theft_loss": {}})
    good = {"theft_loss": {"dea_notice_business_days": 1, "form_106_days": 45,
                           "timezone": "Mars/Olympus"},
            "witness_roles": {"waste": ["nurse"], "destruction": ["nurse"]},
            "count_variance_tolerance_mg": "0"}
    with pytest.raises(ProtocolError):
        parse_protocol(good)
