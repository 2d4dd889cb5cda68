"""What the session page shows, gathered through FHIR as the signed-in user: the session, its
doses, flowsheet, schedule, alerts and adverse events, and the pre-dose checklist.

The checklist is the dosing rule's own verdict on the dose the calculator proposes
(``ehr.clinical.dosing.dry_run``); this module only sorts its issues into the sections a
clinician reads (eligibility, flags, vitals, weight, interval, lot, dose and order). The same
sorting places the issues of a refused charting (422) next to the section they are about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ehr.clinical.dosing.protocol import DosingProtocol
from ehr.clinical.sessions.measures import observed_values
from ehr.clinical.sessions.phases import PARTICIPANT_SYSTEM, PHASE_DISPLAY, phase_of
from ehr.clinical.sessions.protocol import MonitoringProtocol
from ehr.web.fhir_calls import FhirCalls
from ehr.web.vitals_chart import VitalsPoint

MA = "MedicationAdministration"
# Checklist sections, in the order a clinician goes through them before a dose.
SECTIONS = (
    ("eligibility", "Eligibility"),
    ("flags", "Safety flags"),
    ("vitals", "Pre-dose vital signs"),
    ("weight", "Weight"),
    ("interval", "Interval since the last dose"),
    ("lot", "Lot (ledger)"),
    ("dose", "Dose and protocol maximum"),
    ("order", "Order, route and session"),
)


@dataclass
class Gate:
    key: str
    title: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)  # what was checked, for the reader

    @property
    def state(self) -> str:
        return "fail" if self.errors else "warn" if self.warnings else "pass"


def section_of(issue: dict[str, Any]) -> str:
    """The checklist section an OperationOutcome issue of the dosing gates belongs to."""
    text = str(issue.get("diagnostics") or "")
    where = " ".join(str(e) for e in issue.get("expression") or [])
    if "eligib" in text:
        return "eligibility"
    if text.startswith("Flag/"):
        return "flags"
    if "overrid" in text:
        return "vitals"
    if "ledger:" in text or ("lot" in text and "medicationReference" in where):
        return "lot"
    if "supportingInformation" in where or "weight" in text:
        return "weight"
    if f"{MA}.effective" in where:
        return "interval"
    if "dosage.dose" in where or f"{MA}.extension" in where:
        return "dose"
    if not where and issue.get("code") != "forbidden":
        return "vitals"
    return "order"


def gates_of(issues: list[dict[str, Any]]) -> dict[str, Gate]:
    gates = {key: Gate(key, title) for key, title in SECTIONS}
    for issue in issues:
        gate = gates[section_of(issue)]
        text = str(issue.get("diagnostics") or "")
        if issue.get("severity") in ("error", "fatal"):
            gate.errors.append(text)
        elif issue.get("severity") == "warning":
            gate.warnings.append(text)
    return gates


def vitals_rows(protocol: DosingProtocol, gate: Gate) -> list[tuple[str, str, list[str]]]:
    """(measure, state, texts) per pre-dose measurement of the dosing protocol."""
    rows = []
    for m in protocol.measurements.values():
        errors = [t for t in gate.errors if m.display in t]
        warnings = [t for t in gate.warnings if m.display in t]
        state = "fail" if errors else "warn" if warnings else "pass"
        rows.append((m.display.capitalize(), state, errors + warnings))
    return rows


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def flowsheet(observations: list[dict[str, Any]],
              protocol: MonitoringProtocol) -> list[VitalsPoint]:
    """The session's Observations as time points, oldest first, breaches marked."""
    points: dict[datetime, VitalsPoint] = {}
    for obs in observations:
        when = _parse(obs.get("effectiveDateTime"))
        values = observed_values(obs)
        if when is None or not values:
            continue
        point = points.setdefault(when, VitalsPoint(when))
        point.values.update(values)
    for point in points.values():
        for key, value in point.values.items():
            threshold = protocol.threshold(key)
            words = threshold.breached(value) if threshold else None
            if words:
                point.breaches[key] = words
    return sorted(points.values(), key=lambda p: p.when)


def participants(encounter: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in encounter.get("participant") or []:
        codings = [c for t in p.get("type") or [] for c in (t.get("coding") or [])]
        role = next((c.get("display") or c.get("code") for c in codings
                     if c.get("system") == PARTICIPANT_SYSTEM), "Participant")
        who = (p.get("individual") or {})
        out.append((str(role), str(who.get("display") or who.get("reference") or "")))
    return out


def schedule_of(result: dict[str, Any]) -> dict[str, Any]:
    """The ``$monitoring-schedule`` Parameters as a dict with a list of items."""
    out: dict[str, Any] = {"items": []}
    for param in result.get("parameter") or []:
        name = param.get("name")
        if name == "item":
            parts = {p.get("name"): next((v for k, v in p.items() if k.startswith("value")),
                                         None) for p in param.get("part") or []}
            out["items"].append(parts)
        else:
            out[str(name)] = next((v for k, v in param.items() if k.startswith("value")), None)
    return out


def eligibility_of(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"reasons": []}
    for param in result.get("parameter") or []:
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        if param.get("name") == "reason":
            out["reasons"].append(value)
        else:
            out[str(param.get("name"))] = value
    return out


def session_resources(fhir: FhirCalls, pid: str, eid: str) -> dict[str, Any]:
    """The session's doses, Observations, Flags and adverse events (each a FHIR search)."""
    ref = f"Encounter/{eid}"
    doses = fhir.search(MA, [("encounter", eid), ("_count", "50")])
    observations = fhir.search("Observation", [("encounter", eid), ("_count", "500")])
    flags = fhir.search("Flag", [("encounter", eid), ("_count", "100")])
    events = fhir.search("AdverseEvent", [("patient", pid), ("_count", "100")])
    return {
        "doses": [d for d in doses.entries() if d.get("resourceType") == MA],
        "observations": [o for o in observations.entries()
                         if o.get("resourceType") == "Observation"],
        "flags": sorted((f for f in flags.entries() if f.get("resourceType") == "Flag"),
                        key=lambda f: str((f.get("period") or {}).get("start") or ""),
                        reverse=True),
        "adverse_events": [e for e in events.entries()
                           if e.get("resourceType") == "AdverseEvent"
                           and (e.get("encounter") or {}).get("reference") == ref],
    }


def phase_label(encounter: dict[str, Any]) -> tuple[str, str]:
    phase = phase_of(encounter) or ""
    return phase, PHASE_DISPLAY.get(phase, phase or "not a session")


def dose_summary(dose: dict[str, Any]) -> dict[str, Any]:
    """Lot, mg, mg/kg, route and times of a charted administration, for the page."""
    contained: dict[str, Any] = next((c for c in dose.get("contained") or []
                                      if c.get("resourceType") == "Medication"), {})
    dosage = dose.get("dosage") or {}
    per_kg = next(((e.get("valueQuantity") or {}).get("value")
                   for e in dose.get("extension") or [] if "dose-per-body-weight"
                   in str(e.get("url"))), None)
    period = dose.get("effectivePeriod") or {}
    route = next((c.get("display") or c.get("code")
                  for c in (dosage.get("route") or {}).get("coding") or []), "")
    return {"id": dose.get("id"), "status": dose.get("status"),
            "lot": (contained.get("batch") or {}).get("lotNumber"),
            "mg": (dosage.get("dose") or {}).get("value"), "per_kg": per_kg, "route": route,
            "start": dose.get("effectiveDateTime") or period.get("start"),
            "end": period.get("end"), "infusion": "effectivePeriod" in dose,
            "override": any("dosing-override" in str(e.get("url"))
                            for e in dose.get("extension") or [])}
