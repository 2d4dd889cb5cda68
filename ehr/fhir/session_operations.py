"""Session operations: ``Encounter/{id}/$record-vitals``, ``$monitoring-schedule``, ``$discharge``.

Each reads the session Encounter through the read path (access control, audit), writes
through the Writer in the request's one transaction and records an ``operation:<name>``
audit event. Inputs and outputs are FHIR ``Parameters``; docs/sessions.md lists them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.clinical.sessions.alerts import breach_flag, breaches
from ehr.clinical.sessions.discharge import Checklist, Signoff, discharge_problems
from ehr.clinical.sessions.lifecycle import signed_discharge
from ehr.clinical.sessions.measures import MEASURES, ROW_KEYS, VitalsRow, row_observations
from ehr.clinical.sessions.phases import phase_of, with_phase
from ehr.clinical.sessions.protocol import default_protocol
from ehr.clinical.sessions.records import session_records
from ehr.clinical.sessions.schedule import schedule_for
from ehr.clinical.sessions.timeline import Timeline, parse_time, timeline
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.errors import BadRequest, Conflict, EhrError, Forbidden, Issue, Unprocessable
from ehr.fhir import canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.store.repository import StoredResource

SIGNING_ROLES = frozenset({"nurse", "physician"})
DISCHARGE_ACTION = "session-discharge"
_OPEN_PHASES = ("arrived", "dosing", "monitoring")


# -- Parameters in and out ---------------------------------------------------------------


def parameters_in(ex: Exchange) -> list[dict[str, Any]]:
    body = ex.json_body()
    if body.get("resourceType") != "Parameters":
        raise BadRequest("The body must be a Parameters resource", expression=("resourceType",))
    params = body.get("parameter") or []
    return [p for p in params if isinstance(p, dict)]


def value_of(param: dict[str, Any]) -> tuple[str, Any]:
    """(value[x] key, value) of a parameter; ("", None) when it carries none."""
    for key, value in param.items():
        if key.startswith("value"):
            return key, value
    return "", None


def output(*params: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(params)}


def parameters_response(body: dict[str, Any], status: int = 200) -> FhirResponse:
    return FhirResponse(status, canonical_json.dumps(body).encode())


def session_encounter(ex: Exchange, rid: str | None) -> dict[str, Any]:
    """The session Encounter, read through the read path (404/403 as for a read)."""
    assert rid is not None
    stored = ex.reader.read("Encounter", rid)
    encounter = canonical_json.loads(stored.content or "{}")
    if not isinstance(encounter, dict) or phase_of(encounter) is None:
        raise Unprocessable(f"Encounter/{rid} is not a session (no session-phase extension)",
                            code="business-rule")
    return encounter


def session_timeline(ex: Exchange, encounter: dict[str, Any]) -> Timeline:
    return timeline(session_records(ex.session, encounter), default_protocol())


def audit(ex: Exchange, name: str, rid: str | None, patient: str | None, status: int = 200,
          **detail: Any) -> None:
    patients = (patient.removeprefix("Patient/"),) if patient else ()
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        f"operation:{name}", "Encounter" if rid else None, rid, status=status,
        patients=patients, detail=detail))


def _patient(encounter: dict[str, Any]) -> str:
    return str((encounter.get("subject") or {}).get("reference") or "")


# -- $record-vitals ----------------------------------------------------------------------


def _row(params: list[dict[str, Any]], now_us: int) -> VitalsRow:
    row = VitalsRow(instants.instant(now_us))
    problems: list[Issue] = []
    for i, param in enumerate(params):
        name, (key, value) = param.get("name"), value_of(param)
        where = f"Parameters.parameter[{i}]"
        if name == "time":
            if parse_time(value) is None or key not in ("valueDateTime", "valueInstant") \
                    or "T" not in str(value):
                problems.append(Issue("invalid", "time must be a valueDateTime with a time "
                                      "and zone", "error", (where,)))
            else:
                row.effective = str(value)
        elif name in MEASURES:
            if key == "valueCode":
                row.absent[str(name)] = str(value)
            elif key == "valueQuantity" and isinstance(value, dict):
                value = value.get("value")
            if key != "valueCode":
                if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                    problems.append(Issue("invalid", f"{name} needs a number (valueDecimal, "
                                          "valueInteger or valueQuantity) or a valueCode "
                                          "data-absent-reason", "error", (where,)))
                else:
                    row.values[str(name)] = float(value)
        else:
            problems.append(Issue("not-supported", f"Unknown parameter {name!r}; expected time "
                                  f"or one of {', '.join(ROW_KEYS)}", "error", (where,)))
    problems += [Issue("value", text, "error", (f"Parameters.parameter.where(name='{key}')",))
                 for key, text in row.problems()]
    if problems:
        raise Unprocessable(issues=problems)
    if row.empty():
        raise Unprocessable("Nothing to record: give at least one measurement",
                            code="required", expression=("Parameters.parameter",))
    return row


def record_vitals(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    params = parameters_in(ex)
    encounter = session_encounter(ex, rid)
    phase = phase_of(encounter)
    if phase not in _OPEN_PHASES:
        raise Conflict(f"Vitals are recorded during a session (arrived, dosing, monitoring); "
                       f"this one is {phase!r}")
    row = _row(params, ex.pipeline.clock())
    patient, target = _patient(encounter), f"Encounter/{rid}"
    performer = ex.ctx.actor.practitioner
    written: list[StoredResource] = []
    for obs in row_observations(row, patient=patient, encounter=target, performer=performer):
        outcome = ex.writer.create("Observation", obs)
        assert outcome.stored is not None
        written.append(outcome.stored)
    found = breaches(row.values, default_protocol())
    flags: list[StoredResource] = []
    for breach in found:
        # Any recorder raises the alert; raising it is not a permission to write Flags.
        outcome = ex.writer.create_derived("Flag", breach_flag(
            breach, patient=patient, encounter=target, start=row.effective, author=performer))
        assert outcome.stored is not None
        flags.append(outcome.stored)
    audit(ex, "record-vitals", rid, patient, observations=len(written), alerts=len(flags))
    out = [{"name": "observation", "resource": canonical_json.loads(s.content or "{}")}
           for s in written]
    out += [{"name": "alert", "resource": canonical_json.loads(s.content or "{}")}
            for s in flags]
    return parameters_response(output(*out))


# -- $monitoring-schedule ----------------------------------------------------------------


def _time_param(name: str, us: int | None) -> list[dict[str, Any]]:
    return [] if us is None else [{"name": name, "valueDateTime": instants.instant(us)}]


def monitoring_schedule(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    encounter = session_encounter(ex, rid)
    protocol = default_protocol()
    tl = session_timeline(ex, encounter)
    now = ex.pipeline.clock()
    items = schedule_for(tl, now, protocol.tolerance_minutes)
    out: list[dict[str, Any]] = [
        {"name": "route", "valueCode": tl.route.name},
        {"name": "phase", "valueCode": phase_of(encounter)},
        *_time_param("dosingStart", tl.dosing_start),
        *_time_param("dosingEnd", tl.dosing_end),
        *_time_param("earliestDischarge", tl.earliest_discharge()),
        {"name": "overdue", "valueInteger": sum(1 for i in items if i.status == "overdue")},
    ]
    for item in items:
        parts: list[dict[str, Any]] = [
            {"name": "label", "valueCode": item.label},
            {"name": "measurement", "valueCode": item.measurement},
            {"name": "status", "valueCode": item.status},
            *_time_param("due", item.due_us), *_time_param("done", item.done_us)]
        out.append({"name": "item", "part": parts})
    audit(ex, "monitoring-schedule", rid, _patient(encounter))
    return parameters_response(output(*out))


# -- $discharge --------------------------------------------------------------------------


def _checklist(params: list[dict[str, Any]]) -> tuple[Checklist, str | None]:
    answers: dict[str, Any] = {}
    for param in params:
        answers[str(param.get("name"))] = value_of(param)[1]
    unknown = set(answers) - {"alert-oriented", "escort-confirmed", "no-driving",
                              "escort-name", "signature"}
    if unknown:
        raise BadRequest(f"Unknown parameter(s) {', '.join(sorted(unknown))}")
    for name in ("alert-oriented", "escort-confirmed", "no-driving"):
        if name in answers and not isinstance(answers[name], bool):
            raise BadRequest(f"{name} must be a valueBoolean")
    escort = answers.get("escort-name")
    signature = answers.get("signature")
    return Checklist(answers.get("alert-oriented") is True,
                     answers.get("escort-confirmed") is True,
                     answers.get("no-driving") is True,
                     escort if isinstance(escort, str) and escort.strip() else None), \
        signature if isinstance(signature, str) and signature else None


def discharge(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    params = parameters_in(ex)
    actor = ex.ctx.actor
    if actor.kind != "user" or not SIGNING_ROLES & set(actor.roles):
        raise Forbidden("Only a nurse or physician signs a discharge")
    checklist, signature = _checklist(params)
    encounter = session_encounter(ex, rid)
    phase = phase_of(encounter)
    if phase != "monitoring":
        raise Conflict(f"Only a session under post-dose monitoring is discharged; this one is "
                       f"{phase!r}", expression=("Encounter.extension",))
    now = ex.pipeline.clock()
    problems = discharge_problems(session_timeline(ex, encounter), checklist,
                                  default_protocol(), now)
    printed = actor.display or actor.id
    if signature is None:
        problems.append("the discharge is not signed (re-authenticate: /auth/reauth, then "
                        "pass the assertion as 'signature')")
    elif ex.pipeline.assertions is None:
        problems.append("signatures cannot be verified on this server")
    else:
        try:
            signed = ex.pipeline.assertions.verify(ex.session, signature, actor.id,
                                                   DISCHARGE_ACTION)
            # The printed name on the signature is the one the signer re-authenticated as.
            printed = signed.display_name or printed
        except EhrError as err:
            problems.append(f"signature refused: {err.diagnostics}")
    if problems:
        raise Unprocessable(issues=[Issue("business-rule", p, "error", ("Parameters",))
                                    for p in problems])
    signer = {"reference": actor.practitioner} if actor.practitioner else {}
    signoff = Signoff(str(rid), checklist, signer, printed, now)
    updated = with_phase(encounter, "discharged")
    updated["period"] = {**(encounter.get("period") or {}), "end": instants.instant(now)}
    with signed_discharge(signoff):
        outcome = ex.writer.update("Encounter", str(rid), updated)
    assert outcome.stored is not None
    audit(ex, "discharge", rid, _patient(encounter), signer=actor.id)
    out = [{"name": "encounter", "resource": canonical_json.loads(outcome.stored.content or "{}")}]
    out += [{"name": s.rtype[0].lower() + s.rtype[1:], "resource":
             canonical_json.loads(s.content or "{}")} for s in outcome.derived]
    return parameters_response(output(*out))


def register_session_operations(registry: OperationRegistry) -> None:
    from ehr.fhir.rems_operations import register_rems_operations

    base = f"{CANONICAL_BASE}/OperationDefinition/"
    registry.register(Operation(
        "record-vitals", record_vitals, types=("Encounter",), levels=("instance",),
        methods=("POST",), writes=True, definition=base + "record-vitals",
        documentation="Record one flowsheet time point (vital signs, MOAA/S, CADSS) as "
                      "vital-signs Observations; threshold breaches raise Flags."))
    registry.register(Operation(
        "monitoring-schedule", monitoring_schedule, types=("Encounter",),
        levels=("instance",), methods=("GET",), definition=base + "monitoring-schedule",
        documentation="Due, done and overdue measurements of a session."))
    registry.register(Operation(
        "discharge", discharge, types=("Encounter",), levels=("instance",),
        methods=("POST",), writes=True, definition=base + "discharge",
        documentation="Discharge gate: checklist and signature; 422 lists every reason."))
    register_rems_operations(registry)
