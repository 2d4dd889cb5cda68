"""The discharge gate: every reason a patient may not yet go home, and the signed sign-off.

A session is discharged only when the minimum observation time since the last dose has passed
(route protocol: 2 h for esketamine), the last vitals are recent, within the alert thresholds
and near the pre-dose baseline, MOAA/S is back to the protocol's required score, the patient is
alert and oriented, an escort is confirmed, no driving is acknowledged and a clinician signs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ehr import instants
from ehr.clinical.sessions.alerts import breaches
from ehr.clinical.sessions.measures import MEASURES
from ehr.clinical.sessions.protocol import MINUTE_US, MonitoringProtocol
from ehr.clinical.sessions.timeline import Timeline
from ehr.clinical.terminology import CANONICAL_BASE, coding

CHECKLIST_QUESTIONNAIRE = f"{CANONICAL_BASE}/Questionnaire/session-discharge-checklist"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
# (linkId, question, what a "no" means) of the discharge checklist.
CHECKLIST = (
    ("alert-oriented", "Patient is alert and oriented", "the patient is not alert and oriented"),
    ("escort-confirmed", "A responsible adult escort is present",
     "no escort is confirmed"),
    ("no-driving", "Patient acknowledged not to drive until the next day",
     "no driving until the next day is not acknowledged"),
)


@dataclass(frozen=True)
class Checklist:
    alert_oriented: bool
    escort_confirmed: bool
    no_driving: bool
    escort_name: str | None = None

    def answers(self) -> dict[str, bool]:
        return {"alert-oriented": self.alert_oriented,
                "escort-confirmed": self.escort_confirmed,
                "no-driving": self.no_driving}


@dataclass(frozen=True)
class Signoff:
    """A verified signature over one session's discharge (set by the gate, read by the rule)."""

    encounter_id: str
    checklist: Checklist
    signer: dict[str, Any]  # Reference to the signer (Practitioner, or display only)
    signer_name: str
    signed_us: int


def _minutes(us: int) -> str:
    return f"{us // MINUTE_US} min"


def discharge_problems(tl: Timeline, checklist: Checklist, protocol: MonitoringProtocol,
                       now_us: int) -> list[str]:
    """Every reason the session may not be discharged now (empty: it may)."""
    problems: list[str] = []
    end = tl.dosing_end
    if not tl.doses:
        problems.append("no dose is recorded for this session")
    elif end is None:
        problems.append("a dose (infusion) is still running")
    else:
        earliest = tl.earliest_discharge()
        assert earliest is not None
        if now_us < earliest:
            problems.append(
                f"minimum observation time not reached: {tl.route.min_observation_minutes} min "
                f"after the last dose ({tl.route.name}), {_minutes(earliest - now_us)} left")
    problems += _vitals_problems(tl, protocol, now_us)
    for link_id, _, refusal in CHECKLIST:
        if not checklist.answers()[link_id]:
            problems.append(refusal)
    return problems


def _vitals_problems(tl: Timeline, protocol: MonitoringProtocol, now_us: int) -> list[str]:
    problems: list[str] = []
    start = tl.dosing_start
    baseline = tl.baseline()
    max_age = protocol.last_vitals_max_age_minutes * MINUTE_US
    latest: dict[str, float] = {}
    for key in ("systolic", "diastolic", "heart-rate", "spo2"):
        reading = tl.latest(key, since_us=start)
        if reading is None:
            problems.append(f"no post-dose {MEASURES[key].text} recorded")
            continue
        if now_us - reading.at_us > max_age:
            problems.append(f"last {MEASURES[key].text} is older than "
                            f"{protocol.last_vitals_max_age_minutes} min")
        latest[key] = reading.values[key]
    for breach in breaches(latest, protocol):
        problems.append(f"last {breach.text}")
    fraction = protocol.near_baseline_fraction
    for key in protocol.near_baseline_measures:
        if key not in latest:
            continue
        if key not in baseline:
            problems.append(f"no pre-dose baseline {MEASURES[key].text} to compare with")
            continue
        base = baseline[key]
        if abs(latest[key] - base) > fraction * base:
            problems.append(f"last {MEASURES[key].text} {latest[key]:g} is not within "
                            f"{fraction:.0%} of the pre-dose baseline {base:g}")
    sedation = tl.latest("moaas", since_us=start)
    if sedation is None:
        problems.append("no post-dose MOAA/S recorded")
    elif sedation.values["moaas"] != protocol.required_moaas:
        problems.append(f"last MOAA/S is {sedation.values['moaas']:g}, "
                        f"not {protocol.required_moaas}")
    return problems


def checklist_response(signoff: Signoff, *, patient: str, encounter: str) -> dict[str, Any]:
    """The signed checklist as a QuestionnaireResponse."""
    answers = signoff.checklist.answers()
    items: list[dict[str, Any]] = [
        {"linkId": link_id, "text": text, "answer": [{"valueBoolean": answers[link_id]}]}
        for link_id, text, _ in CHECKLIST]
    if signoff.checklist.escort_name:
        items.append({"linkId": "escort-name", "text": "Escort",
                      "answer": [{"valueString": signoff.checklist.escort_name}]})
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": CHECKLIST_QUESTIONNAIRE,
        "subject": {"reference": patient}, "encounter": {"reference": encounter},
        "authored": instants.instant(signoff.signed_us), "item": items}
    if "reference" in signoff.signer:
        response["author"] = signoff.signer
    return response


def new_id() -> str:
    return str(uuid.uuid4())


def signoff_provenance(signoff: Signoff, targets: list[str]) -> dict[str, Any]:
    """Provenance whose signature shows who signed the discharge, when, and as what."""
    when = instants.instant(signoff.signed_us)
    signature_type = coding(SIGNATURE_TYPE, "1.2.840.10065.1.12.1.1", "Author's Signature")
    return {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": when,
        "activity": {"coding": [coding(
            "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "UPDATE", "revise")],
            "text": "Session discharge"},
        "agent": [{"type": {"coding": [coding(
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author",
            "Author")]}, "who": {**signoff.signer, "display": signoff.signer_name}}],
        "signature": [{"type": [signature_type], "when": when,
                       "who": {**signoff.signer, "display": signoff.signer_name}}],
    }
