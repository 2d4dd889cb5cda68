"""Prescriber identifiers: NPI (CMS) and DEA registration numbers, with their check digits."""

from __future__ import annotations

import re

from ehr.errors import BadRequest

_NPI = re.compile(r"^\d{10}$")
_DEA = re.compile(r"^[A-Z][A-Z9]\d{7}$")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_npi(npi: str) -> bool:
    """10 digits; Luhn over the prefix 80840 (the US health-industry issuer) and all 10 digits."""
    return bool(_NPI.match(npi)) and _luhn_valid("80840" + npi)


def is_valid_dea(dea: str) -> bool:
    """2 letters + 7 digits; the last digit is the units digit of d1+d3+d5 + 2*(d2+d4+d6)."""
    if not _DEA.match(dea):
        return False
    d = [int(c) for c in dea[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def normalise_npi(npi: str) -> str:
    value = npi.strip()
    if not is_valid_npi(value):
        raise BadRequest(f"invalid NPI {npi!r}: 10 digits with a valid check digit expected")
    return value


def normalise_dea(dea: str) -> str:
    value = dea.strip().upper()
    if not is_valid_dea(value):
        raise BadRequest(f"invalid DEA number {dea!r}: 2 letters and 7 digits with a valid "
                         "check digit expected")
    return value
