from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ehr.dates import DAY, MAX_TIME, MIN_TIME, parse_range, period_range
from ehr.instants import from_datetime as micros


def _us(*args: int, tz: timezone = UTC) -> int:
    return micros(datetime(*args, tzinfo=tz))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2020", _us(2020, 1, 1), _us(2021, 1, 1)),
        ("2020-02", _us(2020, 2, 1), _us(2020, 3, 1)),
        ("2020-12", _us(2020, 12, 1), _us(2021, 1, 1)),
        ("2020-02-29", _us(2020, 2, 29), _us(2020, 3, 1)),
        ("2020-02-29T10:15", _us(2020, 2, 29, 10, 15), _us(2020, 2, 29, 10, 16)),
        ("2020-02-29T10:15:30", _us(2020, 2, 29, 10, 15, 30), _us(2020, 2, 29, 10, 15, 31)),
        ("2020-02-29T10:15:30Z", _us(2020, 2, 29, 10, 15, 30), _us(2020, 2, 29, 10, 15, 31)),
        ("2020-02-29T10:15:30.5Z", _us(2020, 2, 29, 10, 15, 30, 500_000),
         _us(2020, 2, 29, 10, 15, 30, 600_000)),
        ("2020-02-29T10:15:30.123456789Z", _us(2020, 2, 29, 10, 15, 30, 123_456),
         _us(2020, 2, 29, 10, 15, 30, 123_457)),
    ],
)
def test_precision_gives_the_whole_implied_range(text: str, low: int, high: int) -> None:
    assert parse_range(text) == (low, high)


def test_timezone_offsets_shift_to_utc() -> None:
    plus = parse_range("2020-01-01T10:00:00+02:00")
    minus = parse_range("2020-01-01T10:00:00-05:30")
    assert plus[0] == _us(2020, 1, 1, 8)
    assert minus[0] == _us(2020, 1, 1, 15, 30)
    assert parse_range("2020-01-01T10:00:00 02:00") == plus  # "+" decoded as a space
    offset = timezone(timedelta(hours=2))
    assert plus[0] == _us(2020, 1, 1, 10, tz=offset)


def test_date_without_zone_is_utc_day() -> None:
    low, high = parse_range("1974-12-25")
    assert high - low == DAY
    assert low == _us(1974, 12, 25)


@pytest.mark.parametrize("bad", ["", "20", "2020-13", "2020-02-30", "2020-01-01T25:00",
                                 "2020-01-01T10", "2020-01-01T10:00:61", "yesterday",
                                 "2020-01-01T10:00+15:00", "2020/01/01"])
def test_malformed_dates_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_range(bad)


def test_periods_are_open_where_unbounded() -> None:
    assert period_range("2020-01-01", None) == (_us(2020, 1, 1), MAX_TIME)
    assert period_range(None, "2020-01-01") == (MIN_TIME, _us(2020, 1, 2))
    assert period_range("2020-01-01", "2020-01-31") == (_us(2020, 1, 1), _us(2020, 2, 1))


def test_year_9999_does_not_overflow() -> None:
    assert parse_range("9999") == (_us(9999, 1, 1), MAX_TIME)
