"""The esketamine REMS Patient Monitoring Form, generated from the session record.

The form is a QuestionnaireResponse for the shipped Questionnaire
(``rems-patient-monitoring-questionnaire.json``). It is due ``rems.due_days`` after the session
(the first dose) and is overdue after that until a completed response for the session is
stored (``POST Encounter/{id}/$rems-form`` or an ordinary create).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ehr import instants
from ehr.clinical.sessions.measures import BP_MEASURES
from ehr.clinical.sessions.phases import phase_of
from ehr.clinical.sessions.protocol import MINUTE_US, MonitoringProtocol
from ehr.clinical.sessions.records import ambulatory_encounters, referencing, session_records
from ehr.clinical.sessions.timeline import Reading, Timeline, parse_time, timeline
from ehr.clinical.terminology import CANONICAL_BASE

QUESTIONNAIRE_PATH = Path(__file__).with_name("rems-patient-monitoring-questionnaire.json")
REMS_QUESTIONNAIRE = f"{CANONICAL_BASE}/Questionnaire/spravato-rems-patient-monitoring"
DUE_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/rems-form-due"
DAY_US = 24 * 60 * MINUTE_US


@lru_cache(maxsize=1)
def rems_questionnaire() -> dict[str, Any]:
    loaded = json.loads(QUESTIONNAIRE_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict) and loaded["url"] == REMS_QUESTIONNAIRE
    return loaded


@dataclass(frozen=True)
class RemsFacts:
    """What the form reports, from the session record (None: not recorded)."""

    session_date: str | None
    dose_mg: Decimal | None
    lots: tuple[str, ...]
    duration_minutes: int | None
    bp: dict[str, tuple[float, float] | None]  # "pre-dose" | "post-dose" | "discharge"
    sedation_observed: bool | None
    sedation_resolved: bool | None
    dissociation_observed: bool | None
    dissociation_resolved: bool | None
    due_us: int | None


def _dose_mg(resource: dict[str, Any]) -> Decimal | None:
    dose = (resource.get("dosage") or {}).get("dose") or {}
    value, unit = dose.get("value"), dose.get("code") or dose.get("unit")
    if isinstance(value, int | float) and not isinstance(value, bool) and unit == "mg":
        return Decimal(str(value))
    return None


def _lots(resource: dict[str, Any]) -> list[str]:
    return [str(c["batch"]["lotNumber"]) for c in resource.get("contained") or []
            if isinstance(c, dict) and c.get("resourceType") == "Medication"
            and isinstance((c.get("batch") or {}).get("lotNumber"), str)]


def _bp(reading: Reading | None) -> tuple[float, float] | None:
    if reading is None:
        return None
    return reading.values["systolic"], reading.values["diastolic"]


def _bp_readings(tl: Timeline) -> list[Reading]:
    return [r for r in tl.readings if all(k in r.values for k in BP_MEASURES)]


def rems_facts(tl: Timeline, protocol: MonitoringProtocol) -> RemsFacts:
    start, end = tl.dosing_start, tl.dosing_end
    doses = [_dose_mg(d.resource) for d in tl.doses]
    dose_mg = sum((d for d in doses if d is not None), Decimal(0)) \
        if doses and all(d is not None for d in doses) else None
    lots = tuple(dict.fromkeys(lot for d in tl.doses for lot in _lots(d.resource)))
    discharged = None
    if phase_of(tl.records.encounter) == "discharged":
        discharged = parse_time((tl.records.encounter.get("period") or {}).get("end"))
    bps = _bp_readings(tl)
    bp: dict[str, tuple[float, float] | None] = {"pre-dose": None, "post-dose": None,
                                                  "discharge": None}
    if start is not None:
        bp["pre-dose"] = _bp(next((r for r in reversed(bps) if r.at_us < start), None))
        offset = (tl.route.after_dose_at or (40,))[0] * MINUTE_US
        after = [r for r in bps if r.at_us >= start]
        if after:
            bp["post-dose"] = _bp(min(after, key=lambda r: abs(r.at_us - start - offset)))
            last = [r for r in after if discharged is None or r.at_us <= discharged]
            if last and (end is None or last[-1].at_us > end):
                bp["discharge"] = _bp(last[-1])
    sedation = [r.values["moaas"] for r in tl.after_dose() if "moaas" in r.values]
    dissociation = [r.values["cadss"] for r in tl.after_dose() if "cadss" in r.values]
    cutoff = protocol.dissociation_cadss_above
    return RemsFacts(
        session_date=instants.instant(start)[:10] if start is not None else None,
        dose_mg=dose_mg, lots=lots,
        duration_minutes=(discharged - start) // MINUTE_US
        if start is not None and discharged is not None else None,
        bp=bp,
        sedation_observed=any(v < protocol.required_moaas for v in sedation)
        if sedation else None,
        sedation_resolved=sedation[-1] >= protocol.required_moaas if sedation else None,
        dissociation_observed=any(v > cutoff for v in dissociation) if dissociation else None,
        dissociation_resolved=dissociation[-1] <= cutoff if dissociation else None,
        due_us=start + protocol.rems_due_days * DAY_US if start is not None else None,
    )


def _answer(link_id: str, text: str, key: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"linkId": link_id, "text": text, "answer": [{key: value}]}


def _number(value: float | Decimal) -> int | float:
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def _bp_group(name: str, text: str, pair: tuple[float, float] | None) -> dict[str, Any]:
    items = []
    if pair is not None:
        items = [{"linkId": f"bp-{name}-systolic", "text": "Systolic (mmHg)",
                  "answer": [{"valueDecimal": _number(pair[0])}]},
                 {"linkId": f"bp-{name}-diastolic", "text": "Diastolic (mmHg)",
                  "answer": [{"valueDecimal": _number(pair[1])}]}]
    group: dict[str, Any] = {"linkId": f"bp-{name}", "text": text}
    if items:
        group["item"] = items
    return group


def rems_response(tl: Timeline, facts: RemsFacts, *, author: str | None = None,
                  status: str = "in-progress") -> dict[str, Any]:
    """The form as a QuestionnaireResponse (unanswered where the record holds nothing)."""
    encounter = tl.records.encounter
    items = [
        _answer("session-date", "Date of treatment session", "valueDate", facts.session_date),
        _answer("dose-mg", "Dose administered (mg)", "valueDecimal",
                _number(facts.dose_mg) if facts.dose_mg is not None else None),
        {"linkId": "lot-number", "text": "Lot number(s)",
         "answer": [{"valueString": lot} for lot in facts.lots]} if facts.lots else None,
        _answer("duration-minutes", "Duration of post-dose observation (minutes)",
                "valueInteger", facts.duration_minutes),
        {"linkId": "bp", "text": "Blood pressure", "item": [
            _bp_group("pre-dose", "Before dosing", facts.bp["pre-dose"]),
            _bp_group("post-dose", "About 40 minutes after dosing", facts.bp["post-dose"]),
            _bp_group("discharge", "Before discharge", facts.bp["discharge"])]},
        _answer("sedation-observed", "Sedation observed", "valueBoolean",
                facts.sedation_observed),
        _answer("sedation-resolved", "Sedation resolved before discharge", "valueBoolean",
                facts.sedation_resolved if facts.sedation_observed else None),
        _answer("dissociation-observed", "Dissociation observed", "valueBoolean",
                facts.dissociation_observed),
        _answer("dissociation-resolved", "Dissociation resolved before discharge",
                "valueBoolean",
                facts.dissociation_resolved if facts.dissociation_observed else None),
    ]
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": REMS_QUESTIONNAIRE,
        "status": status,
        "subject": encounter.get("subject"),
        "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "authored": instants.instant(instants.now_us()),
        "item": [i for i in items if i is not None],
    }
    if facts.due_us is not None:
        response["extension"] = [{"url": DUE_EXTENSION,
                                  "valueDate": instants.instant(facts.due_us)[:10]}]
    if author:
        response["author"] = {"reference": author}
    return response


def submitted_form(session: Session, encounter_id: str) -> dict[str, Any] | None:
    """The completed REMS form stored for the session, if any."""
    for response in referencing(session, "QuestionnaireResponse", "encounter", "Encounter",
                                encounter_id):
        if response.get("questionnaire") == REMS_QUESTIONNAIRE and \
                response.get("status") in ("completed", "amended"):
            return response
    return None


@dataclass(frozen=True)
class RemsDue:
    encounter_id: str
    patient: str | None
    session_us: int
    due_us: int
    overdue: bool


def rems_due(session: Session, protocol: MonitoringProtocol, now_us: int) -> list[RemsDue]:
    """Esketamine sessions whose REMS form has not been stored, oldest first.

    Scans the ambulatory Encounters that are sessions; a practice has thousands, not millions.
    """
    out: list[RemsDue] = []
    for encounter in ambulatory_encounters(session):
        if phase_of(encounter) in (None, "planned", "cancelled"):
            continue
        tl = timeline(session_records(session, encounter), protocol)
        start = tl.dosing_start
        if not tl.route.rems_form or start is None:
            continue
        if submitted_form(session, str(encounter["id"])) is not None:
            continue
        due = start + protocol.rems_due_days * DAY_US
        out.append(RemsDue(str(encounter["id"]), tl.records.patient, start, due, now_us > due))
    return sorted(out, key=lambda d: d.due_us)
