"""``instant`` formats with ``time.strftime``; the text must stay what ``datetime`` writes,
because audit records hash it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ehr.instants import instant, to_datetime

# Years 1000-9999: the range where both render a four-digit year.
FIRST_US = -30_610_224_000_000_000
LAST_US = 253_402_300_799_999_999


@given(st.integers(min_value=FIRST_US, max_value=LAST_US))
def test_instant_is_the_datetime_text(us: int) -> None:
    assert instant(us) == to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_instant_known_values() -> None:
    assert instant(0) == "1970-01-01T00:00:00.000000Z"
    assert instant(-1) == "1969-12-31T23:59:59.999999Z"
    assert instant(1_700_000_000_123_456) == "2023-11-14T22:13:20.123456Z"
