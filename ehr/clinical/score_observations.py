"""Scoring on write: a completed QuestionnaireResponse for one of our instruments yields its
score Observation in the same transaction.

The rule checks the response (every faulty item in one 422), scores it from the instrument
data, and derives one Observation per response: category ``survey``, the instrument's total
code (LOINC, or our ``screening`` CodeSystem), ``valueQuantity`` in UCUM ``{score}`` (the C-SSRS
gives a risk level in ``valueCodeableConcept`` instead, never a sum), the band in
``interpretation``, sub-scores as components, ``derivedFrom`` the response version.

The Observation's id derives from the response's. An amended response (any update of a scored
one) therefore updates the same Observation: new value, status ``amended``, ``derivedFrom``
the new response version, the earlier value kept in the Observation's history. A response set
to ``entered-in-error`` (or deleted) sets its Observation to ``entered-in-error``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from ehr.clinical.instruments.catalog import SCREENING_SYSTEM, Instrument, by_url
from ehr.clinical.instruments.response_check import check_response
from ehr.clinical.instruments.scoring import Score, score
from ehr.clinical.safety_flags import derived_id, raise_flags, register_safety_flag_rules
from ehr.clinical.terminology import OBSERVATION_CATEGORY, UCUM, coding
from ehr.context import RequestContext
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource, get_current

SCORED_STATUSES = ("completed", "amended")
QR = "QuestionnaireResponse"
SURVEY = {"coding": [coding(OBSERVATION_CATEGORY, "survey", "Survey")]}


def _reference(node: Any, prefix: str) -> str | None:
    ref = node.get("reference") if isinstance(node, dict) else None
    return ref if isinstance(ref, str) and ref.startswith(prefix) else None


def _body(stored: StoredResource | None) -> dict[str, Any] | None:
    if stored is None or stored.deleted or not stored.content:
        return None
    loaded = json.loads(stored.content)
    return loaded if isinstance(loaded, dict) else None


def _instrument_of(resource: dict[str, Any] | None) -> tuple[Instrument | None, str]:
    canonical = resource.get("questionnaire") if resource else None
    if not isinstance(canonical, str):
        return None, ""
    url, _, version = canonical.partition("|")
    return by_url(url), version


def _sex(session: Session, patient_id: str) -> str | None:
    patient = _body(get_current(session, "Patient", patient_id))
    gender = patient.get("gender") if patient else None
    return gender if isinstance(gender, str) else None


def _quantity(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "{score}", "system": UCUM, "code": "{score}"}


def observation(result: Score, response: dict[str, Any], *, response_ref: str,
                status: str) -> dict[str, Any]:
    instrument = result.instrument
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": status,
        "category": [SURVEY],
        "code": {"coding": [instrument.total], "text": instrument.total.get("display")},
        "subject": response["subject"],
        "effectiveDateTime": response["authored"],
        "derivedFrom": [{"reference": response_ref}],
    }
    encounter = _reference(response.get("encounter"), "Encounter/")
    if encounter:
        obs["encounter"] = {"reference": encounter}
    band = result.band
    if result.total is None and band is not None:
        obs["valueCodeableConcept"] = {"coding": [band.coding()], "text": band.display}
    elif result.total is not None:
        obs["valueQuantity"] = _quantity(result.total)
    if band is not None:
        obs["interpretation"] = [{"coding": [band.coding()], "text": band.display}]
    components = []
    for part in result.components:
        component: dict[str, Any] = {"code": {"coding": [
            coding(SCREENING_SYSTEM, part.code, part.display)], "text": part.display}}
        if isinstance(part.value, bool):
            component["valueBoolean"] = part.value
        else:
            component["valueQuantity"] = _quantity(part.value)
        components.append(component)
    if components:
        obs["component"] = components
    security = (response.get("meta") or {}).get("security")
    if security:
        # The score says what the answers said: it keeps their sensitivity labels.
        obs["meta"] = {"security": security}
    return obs


def _retract(session: Session, change: Change) -> None:
    """The response was entered in error: so is its score."""
    obs_id = derived_id(change.rid, "score")
    current = _body(get_current(session, "Observation", obs_id))
    if current is None or current.get("status") == "entered-in-error":
        return
    security = (current.pop("meta", None) or {}).get("security")
    current.pop("id", None)
    if security:
        current["meta"] = {"security": security}
    change.derive("Observation", {**current, "status": "entered-in-error"}, rid=obs_id)


def score_rule(session: Session, ctx: RequestContext, change: Change) -> None:
    resource = change.resource
    instrument, version = _instrument_of(resource)
    if resource is None or instrument is None:
        prior_instrument, _ = _instrument_of(_body(change.prior))
        if prior_instrument is not None:
            _retract(session, change)
        return
    status = resource.get("status")
    if status == "entered-in-error":
        _retract(session, change)
        return
    if status not in SCORED_STATUSES:
        return
    if version and version != instrument.version:
        change.error("business-rule", f"{instrument.title}: version {version!r} is not the "
                     f"version this service scores ({instrument.version!r})",
                     f"{QR}.questionnaire")
    checked = check_response(instrument, resource)
    change.issues.extend(checked.issues)
    patient = _reference(resource.get("subject"), "Patient/")
    if patient is None:
        change.error("required", f"A completed {instrument.title} needs subject "
                     "Patient/<id>: its score is the patient's", f"{QR}.subject")
    if not isinstance(resource.get("authored"), str):
        change.error("required", f"A completed {instrument.title} needs authored: it dates "
                     "the score", f"{QR}.authored")
    if change.refused or patient is None:
        return
    patient_id = patient.split("/")[1]
    result = score(instrument, checked.answers,
                   sex=_sex(session, patient_id) if instrument.bands_by_sex else None)
    obs_id = derived_id(change.rid, "score")
    earlier = get_current(session, "Observation", obs_id)
    amended = earlier is not None and not earlier.deleted
    response_ref = f"{QR}/{change.rid}/_history/{change.version}"
    change.derive("Observation", observation(
        result, resource, response_ref=response_ref,
        status="amended" if amended else "final"), rid=obs_id)
    raise_flags(session, change, instrument, result, checked.answers, checked.paths,
                patient_id=patient_id,
                encounter=_reference(resource.get("encounter"), "Encounter/"),
                authored=resource["authored"],
                security=(resource.get("meta") or {}).get("security") or [])


def register_screening_rules(registry: RuleRegistry) -> None:
    """Scoring of our instruments' responses and the review rule of the flags they raise."""
    registry.register(QR, score_rule)
    register_safety_flag_rules(registry)
