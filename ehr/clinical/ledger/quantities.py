"""Exact quantities of the ledger: milligrams, millilitres and the concentration between them.

The milligram is the unit of account; millilitres follow from the lot's concentration
(mg/mL). A volume the caller states may differ from the computed one only by rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ehr.clinical.ledger.tables import PLACES

UNIT = Decimal(1).scaleb(-PLACES)
ZERO = Decimal(0).quantize(UNIT)
# The largest difference between a stated volume and mg / concentration that is rounding.
ML_TOLERANCE = Decimal("0.01")


class QuantityError(ValueError):
    """A quantity that is not a finite, non-negative decimal with at most 4 places."""


def exact(value: object, what: str, *, positive: bool = False) -> Decimal:
    """``value`` as a Decimal of 4 places, refusing floats' artefacts and negative amounts."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"{what} must be a number")
    try:
        number = Decimal(str(value)) if isinstance(value, int | float | str) else value
    except InvalidOperation as exc:
        raise QuantityError(f"{what} must be a number, got {value!r}") from exc
    if not isinstance(number, Decimal) or not number.is_finite():
        raise QuantityError(f"{what} must be a finite number")
    if number != number.quantize(UNIT, rounding=ROUND_HALF_EVEN):
        raise QuantityError(f"{what} has more than {PLACES} decimal places")
    if number < 0 or (positive and number == 0):
        raise QuantityError(f"{what} must be {'greater than' if positive else 'at least'} 0")
    return number.quantize(UNIT)


def ml_of(mg: Decimal, concentration: Decimal) -> Decimal:
    return (mg / concentration).quantize(UNIT, rounding=ROUND_HALF_EVEN)


def mg_of(ml: Decimal, concentration: Decimal) -> Decimal:
    return (ml * concentration).quantize(UNIT, rounding=ROUND_HALF_EVEN)


def volume_problem(mg: Decimal, ml: Decimal | None, concentration: Decimal) -> str | None:
    """Why a stated volume does not match the dose at this concentration (None: it does)."""
    if ml is None:
        return None
    expected = ml_of(mg, concentration)
    if abs(expected - ml) > ML_TOLERANCE:
        return (f"{ml} mL does not match {mg} mg at {concentration} mg/mL "
                f"(expected {expected} mL)")
    return None


def text(value: Decimal) -> str:
    """A quantity as reports print it: no exponent, trailing zeros kept to 4 places."""
    exact_value = value.quantize(UNIT)
    return format(ZERO if exact_value == 0 else exact_value, "f")  # never "-0.0000"
