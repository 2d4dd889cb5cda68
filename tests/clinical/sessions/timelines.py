"""Session timelines built in memory (no database), for schedule and discharge arithmetic."""

from __future__ import annotations

from typing import Any

from ehr import instants
from ehr.clinical.sessions.measures import VitalsRow, row_observations
from ehr.clinical.sessions.phases import session_encounter, with_phase
from ehr.clinical.sessions.protocol import default_protocol
from ehr.clinical.sessions.records import SessionRecords
from ehr.clinical.sessions.timeline import Timeline, timeline

MINUTE = 60_000_000
T0 = 1_700_000_000_000_000 // MINUTE * MINUTE
ROUTES = {"esketamine": "46713006", "iv": "47625008", "oral": "26643006"}


def at(minutes: float) -> str:
    return instants.instant(T0 + int(minutes * MINUTE))


def us(minutes: float) -> int:
    return T0 + int(minutes * MINUTE)


def administration(route: str, start: float, end: float | None = None,
                   mg: float = 56, lot: str = "L1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "MedicationAdministration", "id": f"ma-{start}", "status": "completed",
        "contained": [{"resourceType": "Medication", "id": "m", "batch": {"lotNumber": lot}}],
        "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct",
                                         "code": ROUTES[route]}]},
                   "dose": {"value": mg, "unit": "mg", "code": "mg"}}}
    if route == "iv":
        body["effectivePeriod"] = {"start": at(start), **({"end": at(end)} if end else {})}
    else:
        body["effectiveDateTime"] = at(start)
    return body


def reading(minutes: float, **values: float) -> list[dict[str, Any]]:
    row = VitalsRow(at(minutes), {k.replace("_", "-"): float(v) for k, v in values.items()})
    return row_observations(row, patient="Patient/p", encounter="Encounter/e")


def make(route: str | None, readings: list[list[dict[str, Any]]], *, start: float = 0,
         end: float | None = None, phase: str = "monitoring",
         discharged: float | None = None) -> Timeline:
    encounter = with_phase(session_encounter("p", "c"), phase)
    encounter["id"] = "e"
    if discharged is not None:
        encounter["period"] = {"start": at(-30), "end": at(discharged)}
    doses = [administration(route, start, end)] if route else []
    observations = [o for group in readings for o in group]
    return timeline(SessionRecords(encounter, doses, observations), default_protocol())
