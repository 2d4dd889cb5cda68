"""A session's timeline: when dosing started and ended, by which route, and what was measured.

Dosing comes from the MedicationAdministrations whose ``context`` is the session Encounter
(standard R4 shape: ``dosage.route`` SNOMED CT, ``effectiveDateTime`` or ``effectivePeriod``
for an infusion, the lot in a contained Medication's ``batch.lotNumber``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ehr import instants
from ehr.clinical.sessions.measures import observed_values
from ehr.clinical.sessions.protocol import MonitoringProtocol, RouteProtocol
from ehr.clinical.sessions.records import SessionRecords
from ehr.clinical.terminology import RXNORM, SNOMED

_GIVEN = ("completed", "in-progress")


def parse_time(text: Any) -> int | None:
    """Microseconds of a FHIR dateTime/instant (a date alone is its midnight UTC)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return instants.from_datetime(moment)


@dataclass(frozen=True)
class Dose:
    resource: dict[str, Any]
    start_us: int
    end_us: int | None  # None: an infusion still running
    route: str | None  # SNOMED CT route code
    rxnorm: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"MedicationAdministration/{self.resource.get('id')}"


@dataclass(frozen=True)
class Reading:
    """One Observation's measured values at its effective time."""

    at_us: int
    values: dict[str, float]
    resource: dict[str, Any]


def _dose(resource: dict[str, Any]) -> Dose | None:
    if resource.get("status") not in _GIVEN:
        return None
    period = resource.get("effectivePeriod") or {}
    start = parse_time(resource.get("effectiveDateTime")) or parse_time(period.get("start"))
    if start is None:
        return None
    if "effectiveDateTime" in resource:
        end: int | None = start
    else:
        end = parse_time(period.get("end"))
    route = None
    for c in ((resource.get("dosage") or {}).get("route") or {}).get("coding") or []:
        if isinstance(c, dict) and c.get("system") == SNOMED:
            route = c.get("code")
    codes = [c.get("code") for c in
             (resource.get("medicationCodeableConcept") or {}).get("coding") or []
             if isinstance(c, dict) and c.get("system") == RXNORM]
    for contained in resource.get("contained") or []:
        if isinstance(contained, dict) and contained.get("resourceType") == "Medication":
            codes += [c.get("code") for c in (contained.get("code") or {}).get("coding") or []
                      if isinstance(c, dict) and c.get("system") == RXNORM]
    return Dose(resource, start, end, route, tuple(c for c in codes if isinstance(c, str)))


@dataclass(frozen=True)
class Timeline:
    records: SessionRecords
    route: RouteProtocol
    doses: tuple[Dose, ...]
    readings: tuple[Reading, ...]  # in time order

    @property
    def dosing_start(self) -> int | None:
        return min((d.start_us for d in self.doses), default=None)

    @property
    def dosing_end(self) -> int | None:
        """When the last dose ended (None while none was given or an infusion runs)."""
        if not self.doses or any(d.end_us is None for d in self.doses):
            return None
        return max(d.end_us for d in self.doses if d.end_us is not None)

    @property
    def infusion_running(self) -> bool:
        return any(d.end_us is None for d in self.doses)

    def earliest_discharge(self) -> int | None:
        end = self.dosing_end
        return None if end is None else end + self.route.min_observation_minutes * 60_000_000

    def baseline(self) -> dict[str, float]:
        """The last pre-dose value of each measure (before the first dose started)."""
        start = self.dosing_start
        out: dict[str, float] = {}
        for reading in self.readings:
            if start is None or reading.at_us < start:
                out.update(reading.values)
        return out

    def after_dose(self) -> list[Reading]:
        start = self.dosing_start
        return [] if start is None else [r for r in self.readings if r.at_us >= start]

    def latest(self, measure: str, since_us: int | None = None) -> Reading | None:
        """The last reading of ``measure`` (at or after ``since_us``)."""
        found = None
        for reading in self.readings:
            if measure in reading.values and (since_us is None or reading.at_us >= since_us):
                found = reading
        return found


def timeline(records: SessionRecords, protocol: MonitoringProtocol) -> Timeline:
    doses = tuple(sorted((d for d in map(_dose, records.administrations) if d is not None),
                         key=lambda d: d.start_us))
    first = doses[0] if doses else None
    route = protocol.route(first.route if first else None, first.rxnorm if first else ())
    readings: list[Reading] = []
    for obs in records.observations:
        at = parse_time(obs.get("effectiveDateTime"))
        values = observed_values(obs)
        if at is not None and values:
            readings.append(Reading(at, values, obs))
    readings.sort(key=lambda r: r.at_us)
    return Timeline(records, route, doses, tuple(readings))
