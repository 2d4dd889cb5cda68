"""``/fhir/AuditEvent``: the audit trail read as FHIR, and who may read it.

Compliance (``AuditEvent.rs`` in the policy table, or a system client holding
``system/AuditEvent.rs``) sees every record; an admin sees security events only; everyone else
is refused. Each read of the trail is itself recorded, naming the sequence numbers it returned.

Search parameters: ``date`` (ge/le/gt/lt/eq/ne/sa/eb/ap prefixes, any precision, repeatable),
``agent`` (user name, client id or ``Practitioner/x``), ``entity`` (``Type/id`` or
``Type/id/_history/v``; a Patient also matches the records that concern that patient),
``patient``, ``subtype``, ``outcome`` (0/4/8/12), ``type`` (``rest`` or a DCM code),
``action`` (C/R/U/D/E), ``_id`` (seq), ``_count``, ``_sort`` (``date`` or ``-date``, the
default) and ``_cursor`` (keyset on (time, seq)). Repeated parameters AND, commas OR.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlmodel import Session

from ehr.audit import repository
from ehr.audit.events import AccessEvent
from ehr.audit.repository import AuditFilter, AuditRow, Cursor, Term
from ehr.auth.roles import Role
from ehr.context import RequestContext
from ehr.dates import parse_range
from ehr.errors import BadRequest, Forbidden, Issue, NotFound, outcome_of
from ehr.fhir import canonical_json
from ehr.fhir.audit_events import (
    ACTION_CODES,
    action_terms,
    outcome_terms,
    render,
    subtype_terms,
    type_terms,
)
from ehr.fhir.bundles import envelope, paging_links
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange, search_form
from ehr.fhir.pipeline import Pipeline

AUDIT_EVENT = "AuditEvent"
SECURITY_ONLY = AuditFilter().where(Term("category", "security"))
_ID = r"[A-Za-z0-9\-.]{1,64}"
_PRACTITIONER = re.compile(rf"^Practitioner/{_ID}$")
_ENTITY = re.compile(rf"^([A-Z][A-Za-z]{{1,63}})/({_ID})(?:/_history/(\d{{1,18}}))?$")
_PATIENT = re.compile(rf"^(?:Patient/)?({_ID})$")
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def audit_scope(pipeline: Pipeline, session: Session, ctx: RequestContext,
                interaction: str) -> AuditFilter:
    """The records this caller may read, as a filter; Forbidden when none at all.

    Records still waiting for the sealer are chained first, so the caller sees every record
    committed before it asked.
    """
    try:
        pipeline.guard.authorize(session, ctx, interaction, AUDIT_EVENT)
        scope = AuditFilter()
    except Forbidden:
        if not (ctx.actor.kind == "user" and Role.ADMIN.value in ctx.actor.roles):
            raise
        scope = SECURITY_ONLY
    pipeline.recorder.settle(session)
    return scope


def record_trail_read(pipeline: Pipeline, session: Session, ctx: RequestContext,
                      event: AccessEvent, seqs: Sequence[int]) -> None:
    """Audit a read of the audit trail, naming the records it returned."""
    event.detail["seqs"] = list(seqs)
    pipeline.recorder.record(session, ctx, event)


# -- parameters ----------------------------------------------------------------------------


def _bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid {name}: {message}", expression=(name,))


def date_term(name: str, value: str) -> Term:
    """A ``date`` search value (with prefix) as a time term."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    try:
        low, high = parse_range(text)
    except ValueError as exc:
        raise _bad(name, f"{value!r} is not a FHIR date, dateTime or instant") from exc
    bounds = {"eq": (low, high), "ap": (low, high), "ge": (low, None), "le": (None, high),
              "gt": (high, None), "sa": (high, None), "lt": (None, low), "eb": (None, low)}
    if prefix == "ne":
        return Term("time_not", (low, high))
    return Term("time", bounds[prefix])


def patient_id(name: str, value: str) -> str:
    match = _PATIENT.match(value)
    if not match:
        raise _bad(name, f"{value!r} is not a patient id or Patient/<id>")
    return match.group(1)


def _agent_term(value: str) -> Term:
    if value.startswith("Practitioner/"):
        if not _PRACTITIONER.match(value):
            raise _bad("agent", f"{value!r} is not a Practitioner reference")
        return Term("practitioner", value)
    return Term("actor", value)


def _entity_terms(value: str) -> tuple[Term, ...]:
    match = _ENTITY.match(value)
    if not match:
        raise _bad("entity", f"{value!r} is not Type/id or Type/id/_history/version")
    rtype, rid, version = match.groups()
    terms = [Term("resource", (rtype, rid, int(version) if version else None))]
    if rtype == "Patient" and version is None:
        terms.append(Term("patient", rid))
    return tuple(terms)


def _code(value: str) -> str:
    return value.rsplit("|", 1)[-1]


def _seq(value: str) -> Term:
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return Term("seq", -1)  # an id that cannot exist matches nothing
    return Term("seq", int(value))


def _terms(name: str, value: str) -> tuple[Term, ...] | None:
    """The OR-terms of one parameter; None when the parameter is not supported."""
    values = [v.strip() for v in value.split(",") if v.strip()]
    if name == "date":
        return tuple(date_term(name, v) for v in values)
    if name == "agent":
        return tuple(_agent_term(v) for v in values)
    if name == "entity":
        return tuple(t for v in values for t in _entity_terms(v))
    if name == "patient":
        return tuple(Term("patient", patient_id(name, v)) for v in values)
    if name == "subtype":
        return tuple(t for v in values for t in subtype_terms(_code(v)))
    if name == "type":
        return tuple(t for v in values for t in type_terms(_code(v)))
    if name == "outcome":
        if any(_code(v) not in ("0", "4", "8", "12") for v in values):
            raise _bad(name, "must be 0, 4, 8 or 12")
        return tuple(t for v in values for t in outcome_terms(_code(v)))
    if name == "action":
        if any(v not in ACTION_CODES for v in values):
            raise _bad(name, f"must be one of {', '.join(ACTION_CODES)}")
        return tuple(t for v in values for t in action_terms(v))
    if name == "_id":
        return tuple(_seq(v) for v in values)
    return None


@dataclass
class AuditQuery:
    filter: AuditFilter = field(default_factory=AuditFilter)
    descending: bool = True
    count: int = 20
    cursor: Cursor | None = None
    link_params: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def parse_query(params: Sequence[tuple[str, str]], *, default_count: int, max_count: int,
                strict: bool = False) -> AuditQuery:
    query = AuditQuery(count=min(default_count, max_count))
    for name, value in params:
        if name != "_cursor":
            query.link_params.append((name, value))
        if name == "_cursor":
            query.cursor = Cursor.decode(value) if value else None
        elif name == "_count":
            if not (value.isascii() and value.isdigit()):
                raise _bad(name, "must be a non-negative integer")
            query.count = max_count if len(value) > 9 else min(int(value), max_count)
        elif name == "_sort":
            if value not in ("date", "-date"):
                raise _bad(name, "AuditEvent sorts by date or -date only")
            query.descending = value == "-date"
        elif name in ("_total", "_format", "_pretty"):
            continue
        elif not value.strip():
            continue  # an empty parameter is ignored (FHIR search rules)
        else:
            terms = _terms(name, value)
            if terms is None:
                message = f"Unknown or unsupported AuditEvent search parameter {name!r}"
                if strict:
                    raise BadRequest(message, code="not-supported", expression=(name,))
                query.warnings.append(Issue("not-supported", f"{message} (ignored)", "warning",
                                            (name,)))
                continue
            query.filter = query.filter.where(*terms)
    return query


# -- handlers ------------------------------------------------------------------------------


def _bundle(base: str, query: AuditQuery, page: repository.AuditPage) -> bytes:
    links = paging_links(base, AUDIT_EVENT, query.link_params,
                         page.next.encode() if page.next is not None else None,
                         page.previous.encode() if page.previous is not None else None)
    entries: list[dict[str, object]] = [
        {"fullUrl": f"{base}/{AUDIT_EVENT}/{row.seq}", "resource": render(row),
         "search": {"mode": "match"}} for row in page.rows]
    if query.warnings:
        entries.append({"resource": outcome_of(query.warnings), "search": {"mode": "outcome"}})
    return envelope("searchset", page.total, links,
                    [canonical_json.dumps_any(e) for e in entries])


def search(ex: Exchange, params: Sequence[tuple[str, str]]) -> FhirResponse:
    settings = ex.pipeline.settings
    query = parse_query(params, default_count=settings.default_page_size,
                        max_count=settings.max_page_size,
                        strict=ex.request.prefer("handling") == "strict")
    scope = audit_scope(ex.pipeline, ex.session, ex.ctx, "search-type")
    flt = AuditFilter(scope.clauses + query.filter.clauses)
    page = repository.search_page(ex.session, flt, descending=query.descending,
                                  count_=query.count, cursor=query.cursor)
    event = AccessEvent("search-type", AUDIT_EVENT, query=urlencode(query.link_params) or None,
                        detail={"matches": len(page.rows)})
    record_trail_read(ex.pipeline, ex.session, ex.ctx, event, [r.seq for r in page.rows])
    return FhirResponse(200, _bundle(ex.base, query, page))


def search_post(ex: Exchange) -> FhirResponse:
    return search(ex, search_form(ex))


def _visible(ex: Exchange, rid: str, interaction: str) -> AuditRow:
    scope = audit_scope(ex.pipeline, ex.session, ex.ctx, interaction)
    row = None
    if rid.isascii() and rid.isdigit() and len(rid) <= 18:
        row = repository.get_record(ex.session, int(rid), scope)
    if row is None:
        # Outside the caller's scope answers exactly like a record that does not exist.
        raise NotFound(f"{AUDIT_EVENT}/{rid} is not known")
    return row


def _resource(ex: Exchange, row: AuditRow, interaction: str) -> FhirResponse:
    event = AccessEvent(interaction, AUDIT_EVENT, str(row.seq), 1)
    record_trail_read(ex.pipeline, ex.session, ex.ctx, event, [row.seq])
    resource = render(row)
    headers = {"ETag": 'W/"1"',
               "Content-Location": f"{ex.base}/{AUDIT_EVENT}/{row.seq}/_history/1"}
    return FhirResponse(200, canonical_json.dumps(resource).encode(), headers)


def read(ex: Exchange, rid: str) -> FhirResponse:
    return _resource(ex, _visible(ex, rid, "read"), "read")


def vread(ex: Exchange, rid: str, vid: str) -> FhirResponse:
    row = _visible(ex, rid, "vread")
    if vid != "1":
        # Audit records never change: version 1 is the only one.
        raise NotFound(f"{AUDIT_EVENT}/{rid}/_history/{vid} is not known")
    return _resource(ex, row, "vread")
