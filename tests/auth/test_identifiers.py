from __future__ import annotations

import pytest

from ehr.auth.identifiers import is_valid_dea, is_valid_npi, normalise_dea, normalise_npi
from ehr.errors import BadRequest


def _npi_check_digit(first9: str) -> str:
    """Luhn check digit over 80840 + the first nine digits (independent computation)."""
    digits = [int(c) for c in "80840" + first9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def _dea_check_digit(six: str) -> str:
    d = [int(c) for c in six]
    return str((d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10)


@pytest.mark.parametrize("first9", ["123456789", "199999999", "100000000", "987654321"])
def test_npi_with_its_check_digit_is_valid(first9: str) -> None:
    good = first9 + _npi_check_digit(first9)
    assert is_valid_npi(good)
    bad = first9 + str((int(good[-1]) + 1) % 10)
    assert not is_valid_npi(bad)


def test_published_example_npi() -> None:
    # CMS's worked example in "Requirements for NPI check digit".
    assert is_valid_npi("1234567893")


@pytest.mark.parametrize("value", ["123456789", "12345678901", "12345678a3", ""])
def test_npi_shape(value: str) -> None:
    assert not is_valid_npi(value)
    with pytest.raises(BadRequest):
        normalise_npi(value)


@pytest.mark.parametrize("prefix,six", [("AB", "123456"), ("FJ", "987654"), ("M9", "000001")])
def test_dea_check_digit(prefix: str, six: str) -> None:
    good = prefix + six + _dea_check_digit(six)
    assert is_valid_dea(good)
    assert normalise_dea(good.lower()) == good
    assert not is_valid_dea(prefix + six + str((int(good[-1]) + 1) % 10))


@pytest.mark.parametrize("value", ["A1234563", "AB12345", "1B1234563", "AB123456X", ""])
def test_dea_shape(value: str) -> None:
    assert not is_valid_dea(value)
    with pytest.raises(BadRequest):
        normalise_dea(value)
