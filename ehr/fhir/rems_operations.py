"""The esketamine REMS Patient Monitoring Form: ``Encounter/{id}/$rems-form`` and
``$rems-overdue``.

``GET $rems-form`` returns the form as a QuestionnaireResponse (the stored, submitted one if
there is one, else generated from the session record); ``_format=html`` or ``Accept:
text/html`` returns the printable page. ``POST $rems-form`` stores the generated form as
completed (submitted). ``GET /fhir/$rems-overdue`` lists esketamine sessions whose form was
not stored, with their due dates (``status=all`` adds those not yet overdue).
"""

from __future__ import annotations

from typing import Any

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.clinical.sessions.protocol import default_protocol
from ehr.clinical.sessions.records import load_reference
from ehr.clinical.sessions.rems import rems_due, rems_facts, rems_response, submitted_form
from ehr.clinical.sessions.rems_page import rems_page
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.errors import BadRequest, Unprocessable
from ehr.fhir import canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.fhir.session_operations import (
    audit,
    output,
    parameters_response,
    session_encounter,
    session_timeline,
)

HTML = "text/html; charset=utf-8"


def wants_html(ex: Exchange) -> bool:
    fmt = next((v for k, v in ex.request.query if k == "_format"), None)
    if fmt is not None:
        return fmt.lower() in ("html", "text/html")
    accept = (ex.request.header("accept") or "").lower()
    return "text/html" in accept and "json" not in accept


def _patient_name(patient: dict[str, Any] | None) -> str:
    for name in (patient or {}).get("name") or []:
        if isinstance(name, dict):
            if name.get("text"):
                return str(name["text"])
            given = " ".join(str(g) for g in name.get("given") or [])
            return f"{given} {name.get('family', '')}".strip()
    return "(name not recorded)"


def rems_form(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    encounter = session_encounter(ex, rid)
    tl = session_timeline(ex, encounter)
    if not tl.route.rems_form:
        raise Unprocessable(f"Encounter/{rid} is not an esketamine session: no REMS form "
                            f"(route protocol {tl.route.name!r})", code="business-rule")
    patient = str((encounter.get("subject") or {}).get("reference") or "")
    stored = submitted_form(ex.session, str(rid))
    if ex.request.method == "POST":
        if stored is not None:
            raise Unprocessable("The REMS form of this session is already stored as "
                                f"QuestionnaireResponse/{stored.get('id')}",
                                code="duplicate")
        author = ex.ctx.actor.practitioner
        form = rems_response(tl, rems_facts(tl, default_protocol()), author=author,
                             status="completed")
        outcome = ex.writer.create("QuestionnaireResponse", form)
        assert outcome.stored is not None
        audit(ex, "rems-form", rid, patient, status=201, stored=outcome.stored.rid)
        return FhirResponse(201, (outcome.stored.content or "").encode())
    form = stored or rems_response(tl, rems_facts(tl, default_protocol()))
    audit(ex, "rems-form", rid, patient, html=wants_html(ex))
    if wants_html(ex):
        page = rems_page(form, patient_name=_patient_name(load_reference(ex.session, patient)),
                         encounter=f"Encounter/{rid}")
        return FhirResponse(200, page.encode(), content_type=HTML)
    return FhirResponse(200, canonical_json.dumps(form).encode())


def rems_overdue(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    wanted = next((v for k, v in ex.request.query if k == "status"), "overdue")
    if wanted not in ("overdue", "all"):
        raise BadRequest("status must be 'overdue' or 'all'", expression=("status",))
    guard = ex.pipeline.guard
    guard.authorize(ex.session, ex.ctx, "search-type", "Encounter")
    out: list[dict[str, Any]] = []
    patients: list[str] = []
    for due in rems_due(ex.session, default_protocol(), ex.pipeline.clock()):
        if wanted == "overdue" and not due.overdue:
            continue
        # Only sessions this caller may read are listed.
        if guard.fetch_visible(ex.session, ex.ctx, "Encounter", due.encounter_id) is None:
            continue
        parts: list[dict[str, Any]] = [
            {"name": "encounter", "valueReference": {"reference":
                                                     f"Encounter/{due.encounter_id}"}},
            {"name": "sessionDate", "valueDate": instants.instant(due.session_us)[:10]},
            {"name": "due", "valueDate": instants.instant(due.due_us)[:10]},
            {"name": "status", "valueCode": "overdue" if due.overdue else "due"}]
        if due.patient:
            parts.insert(1, {"name": "patient", "valueReference": {"reference": due.patient}})
            patients.append(due.patient.removeprefix("Patient/"))
        out.append({"name": "session", "part": parts})
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:rems-overdue", patients=tuple(dict.fromkeys(patients)),
        detail={"sessions": len(out)}))
    return parameters_response(output(*out))


def register_rems_operations(registry: OperationRegistry) -> None:
    base = f"{CANONICAL_BASE}/OperationDefinition/"
    registry.register(Operation(
        "rems-form", rems_form, types=("Encounter",), levels=("instance",),
        methods=("GET", "POST"), writes=True, html=True, definition=base + "rems-form",
        documentation="Esketamine REMS Patient Monitoring Form as a QuestionnaireResponse "
                      "(GET; _format=html for the printable page; POST stores it)."))
    registry.register(Operation(
        "rems-overdue", rems_overdue, levels=("system",), methods=("GET",),
        definition=base + "rems-overdue",
        documentation="Esketamine sessions whose REMS form is overdue (status=all: and due)."))
