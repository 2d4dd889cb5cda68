"""``GET /fhir/Patient/{id}/$scores?instrument=phq-9``: a patient's score series for one instrument.

Answers a ``Parameters`` resource: ``instrument`` and ``code`` (the total-score coding), then
one ``score`` per Observation, oldest first, with parts ``date``, ``value`` (a Quantity, or the
risk level Coding for the C-SSRS), ``band``, ``change`` (from the previous score), ``status``
and ``observation``. Observations entered in error are left out.

Everything is read through the Reader: the patient read and the Observation search apply the
caller's role, scopes and care team exactly as a plain search would, and are audited; the
operation adds its own audit record.
"""

from __future__ import annotations

from typing import Any

from ehr.audit.events import AccessEvent
from ehr.clinical.instruments import by_key, instruments
from ehr.errors import BadRequest
from ehr.fhir import canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry

_LEFT_OUT = ("entered-in-error", "cancelled")
_MAX_PAGES = 100


def _param(ex: Exchange, name: str) -> str | None:
    values = [v for k, v in ex.request.query if k == name]
    if len(values) > 1:
        raise BadRequest(f"{name} may be given once", expression=(name,))
    return values[0] if values else None


def _point(body: dict[str, Any], previous: float | None) -> tuple[dict[str, Any], float | None]:
    parts: list[dict[str, Any]] = []
    if isinstance(body.get("effectiveDateTime"), str):
        parts.append({"name": "date", "valueDateTime": body["effectiveDateTime"]})
    value: float | None = None
    quantity = body.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        value = float(quantity["value"])
        parts.append({"name": "value", "valueQuantity": quantity})
    concept = body.get("valueCodeableConcept")
    if isinstance(concept, dict) and concept.get("coding"):
        parts.append({"name": "value", "valueCoding": concept["coding"][0]})
    for interpretation in body.get("interpretation") or []:
        if isinstance(interpretation, dict) and interpretation.get("coding"):
            parts.append({"name": "band", "valueCoding": interpretation["coding"][0]})
            break
    if value is not None and previous is not None:
        parts.append({"name": "change", "valueDecimal": value - previous})
    parts.append({"name": "status", "valueCode": body.get("status")})
    parts.append({"name": "observation",
                  "valueReference": {"reference": f"Observation/{body.get('id')}"}})
    return {"name": "score", "part": parts}, value


def scores_operation(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    assert rid is not None
    key = _param(ex, "instrument")
    instrument = by_key(key) if key else None
    if instrument is None:
        known = ", ".join(sorted(instruments()))
        raise BadRequest(f"instrument must be one of: {known}", expression=("instrument",))
    ex.reader.read("Patient", rid)  # 404 for a patient the caller may not see
    code = instrument.total
    params = [("patient", rid), ("code", f"{code['system']}|{code['code']}"),
              ("_sort", "date"), ("_count", str(ex.pipeline.settings.max_page_size))]
    bodies: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = ex.reader.search("Observation", params + ([("_cursor", cursor)] if cursor else []))
        bodies.extend(canonical_json.loads(row.content or "{}") for row in page.matches)
        cursor = page.next_cursor
        if not cursor:
            break
    series: list[dict[str, Any]] = []
    previous: float | None = None
    for body in bodies:
        if body.get("status") in _LEFT_OUT:
            continue
        point, value = _point(body, previous)
        previous = value if value is not None else previous
        series.append(point)
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:scores", "Patient", rid, patients=(rid,),
        query=f"instrument={instrument.key}", detail={"scores": len(series)}))
    out = {"resourceType": "Parameters", "parameter": [
        {"name": "instrument", "valueString": instrument.key},
        {"name": "code", "valueCoding": code},
        *series,
    ]}
    return FhirResponse(200, canonical_json.dumps(out).encode())


def register_scores_operation(registry: OperationRegistry) -> None:
    registry.register(Operation(
        "scores", scores_operation, types=("Patient",), levels=("instance",), methods=("GET",),
        documentation="Series of a patient's scores for one screening instrument "
                      "(?instrument=phq-9): date, value, band, change and Observation.",
    ))
