"""Audit records as FHIR R4 AuditEvent, following IHE BALP (Basic Audit Log Patterns).

A FHIR interaction is type ``rest`` with the interaction as subtype (restful-interaction);
security events use DICOM event ids (110114 User Authentication, 110113 Security Alert, ...),
page views 110110 Patient Record, and an export of the trail 110101 Audit Log Used. Agents: the
user or client (requestor, with its Practitioner when the record names one and its user name
as identifier), the client application with the network address, and the server as observer.
Entities: the resource (System Object / Domain Resource), the query of a search (base64), one
per patient (Person / Patient) and the request id (BALP XrequestId).

The AuditEvent id is the record's ``seq``, so reads are stable. Its chain hash travels in the
``audit-hash-chain`` extension (``hash`` and ``prevHash``), not in ``meta.tag``: tags group
resources under shared codes, and a value unique to each record is not such a code.

The mapping from a record's category and interaction to type, subtype and action lives only
here; ``type_terms``/``subtype_terms``/``action_terms`` turn it into audit filter terms so that
searching by a code finds exactly the events rendered with it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any

from ehr.audit.repository import AuditRow, Term

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
CHAIN_EXTENSION = "urn:ehr:fhir:StructureDefinition:audit-hash-chain"
# Our own interaction name, for events no standard code describes exactly.
INTERACTION_SYSTEM = "urn:ehr:audit:interaction"

RESTFUL_CODES = frozenset({
    "read", "vread", "update", "patch", "delete", "history", "history-instance",
    "history-type", "history-system", "create", "search", "search-type", "search-system",
    "capabilities", "transaction", "batch", "operation"})

DCM_DISPLAY = {
    "110101": "Audit Log Used", "110106": "Export", "110110": "Patient Record",
    "110113": "Security Alert", "110114": "User Authentication", "110122": "Login",
    "110123": "Logout", "110127": "Emergency Override Started",
    "110129": "Security Configuration", "110132": "Use of Restricted Function",
    "110137": "User Security Attributes Changed", "110150": "Application",
}
# interaction -> (DCM type, DCM subtype or None) for events that are not a FHIR interaction.
SPECIAL: dict[str, tuple[str, str | None]] = {
    "login": ("110114", "110122"), "login-failed": ("110114", "110122"),
    "logout": ("110114", "110123"), "token-issued": ("110114", "110122"),
    "token-refused": ("110114", "110122"), "lockout": ("110113", "110122"),
    "reauth": ("110114", "110122"),
    "break-glass": ("110113", "110127"), "break-glass-granted": ("110113", "110127"),
    "break-glass-refused": ("110113", "110132"), "denied": ("110113", "110132"),
    "user-admin": ("110113", "110137"), "user-created": ("110113", "110137"),
    "user-disabled": ("110113", "110137"), "user-enabled": ("110113", "110137"),
    "client-admin": ("110113", "110129"), "client-created": ("110113", "110129"),
    "client-disabled": ("110113", "110129"), "client-enabled": ("110113", "110129"),
    "audit-export": ("110101", "110106"),
}
# Any other security event is a Security Alert with our interaction name as its subtype.
REST_TYPE = "rest"
SECURITY_ALERT = "110113"
PATIENT_RECORD = "110110"

_ACTIONS = {"create": "C", "read": "R", "vread": "R", "history-instance": "R",
            "history-type": "R", "history-system": "R", "history": "R", "update": "U",
            "patch": "U", "delete": "D"}
ACTION_CODES = ("C", "R", "U", "D", "E")


def restful_code(interaction: str) -> str | None:
    if interaction.startswith("operation:"):
        return "operation"
    return interaction if interaction in RESTFUL_CODES else None


def type_code(category: str, interaction: str) -> str:
    """``rest`` or a DCM event id (see the module notes)."""
    if interaction in SPECIAL:
        return SPECIAL[interaction][0]
    if category == "security":
        return SECURITY_ALERT
    if category == "ui":
        return PATIENT_RECORD
    return REST_TYPE


def action_of(interaction: str) -> str:
    return _ACTIONS.get(interaction, "E")


def outcome_code(status: int) -> str:
    """R4 AuditEvent.outcome: 0 success, 4 minor failure (4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _dcm(code: str) -> dict[str, Any]:
    return _coding(DCM, code, DCM_DISPLAY.get(code))


def _subtypes(row: AuditRow) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rest = restful_code(row.interaction)
    if rest is not None:
        out.append(_coding(RESTFUL, rest))
    special = SPECIAL.get(row.interaction)
    if special is not None and special[1] is not None:
        out.append(_dcm(special[1]))
    elif row.category == "security" and row.status in (401, 403):
        out.append(_dcm("110132"))
    if rest != row.interaction:
        out.append(_coding(INTERACTION_SYSTEM, row.interaction))
    return out


def _network(address: str | None) -> dict[str, Any] | None:
    if not address:
        return None
    try:
        ipaddress.ip_address(address)
        kind = "2"  # IP address
    except ValueError:
        kind = "1"  # machine name
    return {"address": address, "type": kind}


def _agents(body: dict[str, Any], action: str) -> list[dict[str, Any]]:
    actor = body.get("actor") or {}
    source = body.get("source") or {}
    network = _network(source.get("ip"))
    kind = actor.get("kind")
    who: dict[str, Any] = {}
    if actor.get("practitioner"):
        who["reference"] = actor["practitioner"]
    if actor.get("id"):
        who["identifier"] = {"value": actor["id"]}
    if actor.get("display"):
        who["display"] = actor["display"]
    main: dict[str, Any] = {"who": who or {"display": "unknown"}, "requestor": True}
    if kind == "user":
        main["type"] = {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")
                                   if action in ("R", "E") else
                                   _coding(PARTICIPATION, "AUT", "author (originator)")]}
    else:
        # A system client (or the service itself) is the application that asked.
        main["type"] = {"coding": [_dcm("110150")]}
        if network:
            main["network"] = network
    if actor.get("roles"):
        main["role"] = [{"text": role} for role in actor["roles"]]
    agents = [main]
    if kind == "user" and (network or source.get("user_agent")):
        app: dict[str, Any] = {"type": {"coding": [_dcm("110150")]},
                               "who": {"display": source.get("user_agent") or "unknown client"},
                               "requestor": False}
        if network:
            app["network"] = network
        agents.append(app)
    return agents


def _entities(row: AuditRow, body: dict[str, Any]) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    resource = body.get("resource") or {}
    labels = [_coding(ACT_CODE, code) for code in body.get("protected") or []]
    system_object = {"type": _coding(ENTITY_TYPE, "2", "System Object")}
    if resource.get("id"):
        what = f"{resource['type']}/{resource['id']}"
        if resource.get("version") is not None:
            what += f"/_history/{resource['version']}"
        entities.append({"what": {"reference": what}, **system_object,
                         "role": _coding(OBJECT_ROLE, "4", "Domain Resource")})
    query = body.get("query")
    if query:
        entities.append({**system_object, "role": _coding(OBJECT_ROLE, "24", "Query"),
                         "query": base64.b64encode(query.encode()).decode()})
        if resource.get("type") and not resource.get("id"):
            entities[-1]["description"] = resource["type"]
    elif resource.get("type") and not resource.get("id"):
        entities.append({**system_object, "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
                         "name": resource["type"]})
    if entities and labels:
        entities[0]["securityLabel"] = labels
    details = [{"type": key, "valueString": json.dumps(value, sort_keys=True)
                if not isinstance(value, str) else value}
               for key, value in sorted((body.get("detail") or {}).items())
               if key != "reason" and value is not None]
    for pid in body.get("patients") or []:
        entities.append({"what": {"reference": f"Patient/{pid}"},
                         "type": _coding(ENTITY_TYPE, "1", "Person"),
                         "role": _coding(OBJECT_ROLE, "1", "Patient")})
    if row.request_id:
        entities.append({"what": {"identifier": {"value": row.request_id}},
                         "type": _coding(BALP_ENTITY, "XrequestId", "X-Request-Id")})
    if details:
        if not entities:
            entities.append({**system_object})
        entities[0]["detail"] = details
    return entities


def render(row: AuditRow, observer: str = "ehr") -> dict[str, Any]:
    """The AuditEvent of one audit record (its body is the source of truth)."""
    body = json.loads(row.body)
    action = action_of(row.interaction)
    recorded = body.get("time")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.seq),
        "meta": {"versionId": "1", "lastUpdated": recorded},
        "extension": [{"url": CHAIN_EXTENSION, "extension": [
            {"url": "hash", "valueString": row.hash},
            {"url": "prevHash", "valueString": row.prev_hash}]}],
        "type": (_coding(EVENT_TYPE, "rest", "Restful Operation")
                 if type_code(row.category, row.interaction) == REST_TYPE
                 else _dcm(type_code(row.category, row.interaction))),
    }
    subtypes = _subtypes(row)
    if subtypes:
        event["subtype"] = subtypes
    event.update({"action": action, "recorded": recorded, "outcome": outcome_code(row.status)})
    reason = (body.get("detail") or {}).get("reason")
    if row.status >= 400:
        event["outcomeDesc"] = f"HTTP {row.status}" + (f": {reason}" if reason else "")
    purpose = body.get("purpose_of_use") or row.purpose
    if purpose:
        event["purposeOfEvent"] = [{"coding": [_coding(ACT_REASON, purpose)]}]
    event["agent"] = _agents(body, action)
    event["source"] = {"observer": {"display": observer},
                       "type": [_coding(SOURCE_TYPE, "4", "Application Server")]}
    entities = _entities(row, body)
    if entities:
        event["entity"] = entities
    return event


# -- codes as audit filter terms -----------------------------------------------------------


def type_terms(code: str) -> tuple[Term, ...]:
    """Terms matching the records rendered with type ``code`` (empty: no such type)."""
    special = tuple(SPECIAL)
    named = tuple(Term("interaction", i) for i, (t, _) in SPECIAL.items() if t == code)
    plain = Term("interaction_not", special)
    if code == REST_TYPE:
        return (Term("all", (Term("category", "rest"), plain)),)
    if code == SECURITY_ALERT:
        return (*named, Term("all", (Term("category", "security"), plain)))
    if code == PATIENT_RECORD:
        return (*named, Term("all", (Term("category", "ui"), plain)))
    return named


def subtype_terms(code: str) -> tuple[Term, ...]:
    """Terms matching the records rendered with subtype ``code`` (empty: none can match)."""
    if code == "operation":
        return (Term("interaction_prefix", "operation:"), Term("interaction", "operation"))
    if code == "search":
        return tuple(Term("interaction", i) for i in ("search", "search-type", "search-system"))
    if code == "history":
        return tuple(Term("interaction", i)
                     for i in ("history", "history-instance", "history-type", "history-system"))
    if code in RESTFUL_CODES:
        return (Term("interaction", code),)
    named = tuple(Term("interaction", i) for i, (_, s) in SPECIAL.items() if s == code)
    if code == "110132":
        plain = (Term("category", "security"), Term("interaction_not", tuple(SPECIAL)))
        named += tuple(Term("all", (*plain, Term("status", (s, s + 1)))) for s in (401, 403))
    return named or (Term("interaction", code),)


def action_terms(code: str) -> tuple[Term, ...]:
    if code == "E":
        return (Term("interaction_not", tuple(_ACTIONS)),)
    return tuple(Term("interaction", i) for i, a in _ACTIONS.items() if a == code)


def outcome_terms(code: str) -> tuple[Term, ...]:
    ranges = {"0": (None, 400), "4": (400, 500), "8": (500, None), "12": (0, 0)}
    return (Term("status", ranges[code]),)
