"""The session page's forms turned into FHIR calls, and FHIR answers turned back into words
next to the field they are about: vitals, weight, adverse events, discharge, phase moves.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.responses import Response
from starlette.responses import HTMLResponse

from ehr.clinical.sessions.measures import MEASURES, ROW_KEYS
from ehr.clinical.sessions.phases import phase_of, with_phase
from ehr.clinical.terminology import LOINC, OBSERVATION_CATEGORY, UCUM
from ehr.web.fhir_calls import FhirResult
from ehr.web.pages import Page

# (form field = $record-vitals parameter, label, unit words) in flowsheet order.
VITALS_FIELDS = tuple((key, MEASURES[key].text, MEASURES[key].unit_text or "score")
                      for key in ROW_KEYS)
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
SEVERITIES = ("mild", "moderate", "severe")
_WHERE_NAME = re.compile(r"name='([a-z-]+)'")
_WHERE_INDEX = re.compile(r"parameter\[(\d+)\]")
DONE_WORDS = {
    "vitals": "Vital signs recorded.", "weight": "Weight recorded.",
    "adverse-event": "Adverse event recorded.", "discharged": "Discharge signed: the "
    "session is finished.", "infusion-end": "Infusion end recorded; post-dose monitoring "
    "started.", "rems": "REMS Patient Monitoring Form submitted.",
    "phase-arrived": "Patient checked in.", "phase-dosing": "Dosing started.",
    "phase-monitoring": "Post-dose monitoring started.", "phase-cancelled": "Session cancelled.",
}


def notices(done: str, alerts: str) -> list[dict[str, str]]:
    out = [{"kind": "ok", "text": DONE_WORDS[done]}] if done in DONE_WORDS else []
    if alerts.isdigit() and int(alerts):
        out.append({"kind": "error", "text": f"{alerts} alert(s) raised: a value is beyond a "
                                             "monitoring threshold (see Alerts)."})
    return out


def refusal(page: Page, result: FhirResult, heading: str) -> Response:
    return page.render("message.html", result.status, heading=heading,
                       lines=result.problems() or [f"Refused ({result.status})."],
                       back=page.request.headers.get("referer") or "/patients")


def _move(page: Page, eid: str, phase: str) -> str | None:
    current = page.fhir.get(f"Encounter/{eid}")
    if not current.ok:
        return "The session could not be read again."
    if phase_of(current.body) == phase:
        return None
    moved = page.fhir.put(f"Encounter/{eid}", with_phase(current.body, phase))
    return None if moved.ok else " ".join(moved.problems())


def after_dose(page: Page, eid: str, *, infusion: bool) -> list[str]:
    """Move the session on after a dose: to dosing; a dose given at once also to monitoring
    (an infusion moves there when its end is recorded)."""
    problems = []
    for phase in ("dosing",) if infusion else ("dosing", "monitoring"):
        problem = _move(page, eid, phase)
        if problem:
            problems.append(f"The session did not move to {phase}: {problem}")
            break
    return problems


def end_infusion(page: Page, eid: str, dose_id: str, now: str) -> list[str]:
    found = page.fhir.get(f"MedicationAdministration/{dose_id}")
    if not found.ok or (found.body.get("context") or {}).get("reference") != f"Encounter/{eid}":
        return ["This infusion is not part of the session."]
    dose = dict(found.body)
    dose["status"] = "completed"
    dose["effectivePeriod"] = {**(dose.get("effectivePeriod") or {}), "end": now}
    updated = page.fhir.put(f"MedicationAdministration/{dose_id}", dose)
    if not updated.ok:
        return updated.problems() or [f"Refused ({updated.status})."]
    problem = _move(page, eid, "monitoring")
    return [problem] if problem else []


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def vitals_parameters(form: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The ``$record-vitals`` parameters of the flowsheet form, or what is wrong with it."""
    params: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for key, label, _ in VITALS_FIELDS:
        text = form.get(key, "").strip()
        if not text:
            continue
        value = _number(text)
        if value is None:
            errors[key] = f"{label}: enter a number."
        elif MEASURES[key].integer:
            if value != value.to_integral_value():
                errors[key] = f"{label}: enter a whole number."
            else:
                params.append({"name": key, "valueInteger": int(value)})
        else:
            params.append({"name": key, "valueDecimal": float(value)})
    if not params and not errors:
        errors["vitals"] = "Enter at least one measurement."
    return params, errors


def vitals_errors(result: FhirResult, params: list[dict[str, Any]]) -> dict[str, str]:
    """The operation's refusals, each next to its field (the rest above the form)."""
    out: dict[str, list[str]] = {}
    for issue in result.issues() or [{"diagnostics": f"Refused ({result.status})."}]:
        where = " ".join(issue.get("expression") or [])
        field = "vitals"
        if (named := _WHERE_NAME.search(where)) is not None:
            field = named.group(1)
        elif (indexed := _WHERE_INDEX.search(where)) is not None \
                and int(indexed.group(1)) < len(params):
            field = str(params[int(indexed.group(1))]["name"])
        out.setdefault(field, []).append(str(issue.get("diagnostics") or ""))
    return {k: " ".join(v) for k, v in out.items()}


def record_weight(page: Page, encounter: dict[str, Any], kg: str, now: str) -> str | None:
    value = _number(kg)
    if value is None or value <= 0:
        return "Enter the weight in kg."
    result = page.fhir.post("Observation", {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}],
                 "text": "Body weight"},
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns",
                             "http://hl7.org/fhir/StructureDefinition/bodyweight"]},
        "subject": encounter.get("subject"),
        "encounter": {"reference": f"Encounter/{encounter.get('id')}"},
        "effectiveDateTime": now,
        "valueQuantity": {"value": float(value), "unit": "kg", "system": UCUM, "code": "kg"},
        **({"performer": [{"reference": page.ctx.actor.practitioner}]}
           if page.ctx.actor.practitioner else {})})
    return None if result.ok else " ".join(result.problems()) or f"Refused ({result.status})."


def record_adverse_event(page: Page, encounter: dict[str, Any], form: dict[str, str],
                         now: str) -> dict[str, str]:
    description = form.get("ae_description", "").strip()
    severity = form.get("ae_severity", "")
    errors: dict[str, str] = {}
    if not description:
        errors["ae_description"] = "Describe what happened."
    if severity not in SEVERITIES:
        errors["ae_severity"] = "Choose the severity."
    if errors:
        return errors
    event: dict[str, Any] = {
        "resourceType": "AdverseEvent", "actuality": "actual",
        "event": {"text": description}, "subject": encounter.get("subject"),
        "encounter": {"reference": f"Encounter/{encounter.get('id')}"}, "date": now,
        "severity": {"coding": [{"system": SEVERITY, "code": severity,
                                 "display": severity.capitalize()}]}}
    if page.ctx.actor.practitioner:
        event["recorder"] = {"reference": page.ctx.actor.practitioner}
    if form.get("ae_dose"):
        event["suspectEntity"] = [{"instance": {
            "reference": f"MedicationAdministration/{form['ae_dose']}"}}]
    result = page.fhir.post("AdverseEvent", event)
    if result.ok:
        return {}
    return {"ae_description": " ".join(result.problems()) or f"Refused ({result.status})."}


def discharge_parameters(form: dict[str, str], token: str | None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "valueBoolean": bool(form.get(name))}
        for name in ("alert-oriented", "escort-confirmed", "no-driving")]
    if form.get("escort-name", "").strip():
        params.append({"name": "escort-name", "valueString": form["escort-name"].strip()})
    if token:
        params.append({"name": "signature", "valueString": token})
    return {"resourceType": "Parameters", "parameter": params}


def outcome_text(body: bytes) -> str:
    try:
        outcome = json.loads(body)
    except ValueError:
        return "The form is not available."
    return " ".join(str(i.get("diagnostics", "")) for i in outcome.get("issue") or []) \
        or "The form is not available."


def printable(html: bytes) -> Response:
    """The REMS form page as the FHIR operation made it: self-contained, no script; its one
    inline stylesheet is all the policy allows."""
    return HTMLResponse(html, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                   "frame-ancestors 'none'; form-action 'none'",
        "Referrer-Policy": "same-origin"})
