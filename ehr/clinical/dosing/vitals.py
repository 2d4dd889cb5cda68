"""Pre-dose vital signs and the weight behind a mg/kg dose, read from stored Observations.

Only the newest reading of each measure in the window counts: a reassuring reading taken
before an alarming one must not let a dose through. Readings need a final status, a time with
a zone, and a value in the unit the protocol names (UCUM code, or no code with that unit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ehr.clinical.dosing import repository
from ehr.clinical.dosing.administration import decimal_of, local_id, parse_instant
from ehr.clinical.dosing.protocol import DosingProtocol, Measurement
from ehr.clinical.terminology import LOINC, UCUM

USABLE_STATUS = frozenset({"final", "amended", "corrected"})
MINUTE_US = 60 * 1_000_000
DAY_US = 24 * 60 * MINUTE_US
# Weights recorded in another unit are converted, never refused: kg is the only unit of dosing.
_TO_KG = {"kg": Decimal(1), "g": Decimal("0.001"), "[lb_av]": Decimal("0.45359237")}


@dataclass(frozen=True)
class Reading:
    value: Decimal
    at_us: int
    observation: str  # Observation/<id>


@dataclass(frozen=True)
class Finding:
    """A failed pre-dose check: ``kind`` "missing" or "out_of_range" of ``measurement``."""

    measurement: str
    kind: str
    text: str
    severity: str


def _time(resource: dict[str, Any]) -> int | None:
    for key in ("effectiveDateTime", "effectiveInstant"):
        if key in resource:
            return parse_instant(resource[key])
    period = resource.get("effectivePeriod")
    return parse_instant(period.get("start")) if isinstance(period, dict) else None


def _value(holder: dict[str, Any], unit: str) -> Decimal | None:
    quantity = holder.get("valueQuantity")
    if not isinstance(quantity, dict):
        return None
    code, system = quantity.get("code"), quantity.get("system")
    if code is not None and (code != unit or system not in (None, UCUM)):
        return None
    if code is None and quantity.get("unit") not in (unit, None):
        return None
    return decimal_of(quantity.get("value"))


def _has_code(concept: Any, code: str) -> bool:
    return isinstance(concept, dict) and any(
        isinstance(c, dict) and c.get("system") == LOINC and c.get("code") == code
        for c in concept.get("coding") or [])


def _readings(rows: list[repository.Row], code: str, unit: str) -> list[Reading]:
    """Values coded ``code`` at top level or in a component, newest first."""
    out: list[Reading] = []
    for row in rows:
        resource = json.loads(row.content)
        at = _time(resource)
        if resource.get("status") not in USABLE_STATUS or at is None:
            continue
        holders = [resource] if _has_code(resource.get("code"), code) else []
        holders += [c for c in resource.get("component") or []
                    if isinstance(c, dict) and _has_code(c.get("code"), code)]
        for holder in holders:
            value = _value(holder, unit)
            if value is not None:
                out.append(Reading(value, at, f"Observation/{row.rid}"))
    return sorted(out, key=lambda r: -r.at_us)


def pre_dose_findings(session: Session, patient_id: str, dose_us: int,
                      protocol: DosingProtocol) -> tuple[list[Finding], list[Reading]]:
    """Every failed pre-dose measurement, and the readings that passed (for the record)."""
    since = dose_us - protocol.window_minutes * MINUTE_US
    findings: list[Finding] = []
    passed: list[Reading] = []
    for m in protocol.measurements.values():
        checks = _checks(m)
        wanted = {c for _, codes, _, _ in checks for c in codes} | ({m.panel} if m.panel else set())
        rows = repository.observations(session, patient_id, LOINC, wanted, since, dose_us)
        for label, codes, low, high in checks:
            readings = sorted((r for c in codes for r in _readings(rows, c, m.unit)),
                              key=lambda r: -r.at_us)
            if not readings:
                findings.append(Finding(m.key, "missing", (
                    f"no {label} (LOINC {' or '.join(codes)}) recorded in the "
                    f"{protocol.window_minutes} minutes before the dose"), m.missing))
                continue
            newest = readings[0]
            if (low is not None and newest.value < low) or \
                    (high is not None and newest.value > high):
                limits = " and ".join(t for t in (
                    f"not below {low}" if low is not None else "",
                    f"not above {high}" if high is not None else "") if t)
                findings.append(Finding(m.key, "out_of_range", (
                    f"pre-dose {label} is {newest.value} {m.unit} ({newest.observation}); "
                    f"the protocol requires {limits}"), m.out_of_range))
            else:
                passed.append(newest)
    return findings, passed


def _checks(m: Measurement) -> list[tuple[str, tuple[str, ...], Decimal | None,
                                          Decimal | None]]:
    """(label, codes, lowest allowed, highest allowed) per value the measure checks."""
    if m.panel:
        assert m.systolic is not None and m.diastolic is not None
        return [(f"systolic {m.display}", (m.systolic,), None, m.above),
                (f"diastolic {m.display}", (m.diastolic,), None, m.diastolic_above)]
    # Any of the measure's codes counts (SpO2 by 2708-6 or by pulse oximetry 59408-5).
    return [(m.display, m.codes, m.below, m.above)]


@dataclass(frozen=True)
class Weight:
    kg: Decimal
    at_us: int


def weight_of(session: Session, observation_id: str, patient_id: str,
              protocol: DosingProtocol) -> tuple[Weight | None, str | None]:
    """The body weight in kg from ``Observation/observation_id``, or why it is unusable."""
    content = repository.current_content(session, "Observation", observation_id)
    if content is None:
        return None, f"Observation/{observation_id} (the weight used) does not exist"
    resource = json.loads(content)
    if not _has_code(resource.get("code"), protocol.weight_loinc):
        return None, (f"Observation/{observation_id} is not a body weight "
                      f"(LOINC {protocol.weight_loinc})")
    if local_id(resource.get("subject"), "Patient") != patient_id:
        return None, f"Observation/{observation_id} is another patient's weight"
    at = _time(resource)
    if resource.get("status") not in USABLE_STATUS or at is None:
        return None, (f"Observation/{observation_id} needs a final status and a time with a "
                      "zone to be used for dosing")
    quantity = resource.get("valueQuantity") or {}
    factor = _TO_KG.get(str(quantity.get("code")))
    value = decimal_of(quantity.get("value"))
    if factor is None or value is None or value <= 0 or quantity.get("system") != UCUM:
        return None, (f"Observation/{observation_id} needs a positive valueQuantity in UCUM "
                      "kg, g or [lb_av]")
    return Weight(value * factor, at), None


def newer_weight(session: Session, patient_id: str, after_us: int, until_us: int,
                 protocol: DosingProtocol) -> Reading | None:
    rows = repository.observations(session, patient_id, LOINC, [protocol.weight_loinc],
                                   after_us + 1, until_us)
    for row in rows:
        resource = json.loads(row.content)
        if resource.get("status") in USABLE_STATUS and _time(resource) is not None:
            return Reading(Decimal(0), row.at_us, f"Observation/{row.rid}")
    return None
