"""The audit report's query, rows and streaming, shared by ``/api/audit/report`` and the
compliance pages: filters by time range, user, patient, action or interaction, outcome and type;
sortable by every field (ONC 170.315(d)(3)).

The database sorts and rows stream in batches from a cursor, so memory stays constant however
long the trail. CSV cells that a spreadsheet would run as a formula (leading ``= + - @``, tab or
CR) are prefixed with an apostrophe: user agents and queries are attacker-chosen text.
"""


from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine

from ehr.audit import repository
from ehr.audit.events import AccessEvent
from ehr.audit.repository import AuditFilter, AuditRow, SortKey, Term
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.errors import BadRequest, Forbidden
from ehr.fhir.audit_events import (
    ACTION_CODES,
    action_of,
    action_terms,
    outcome_terms,
    subtype_terms,
    type_terms,
)
from ehr.fhir.audit_search import audit_scope, date_term, patient_id
from ehr.fhir.pipeline import Pipeline

FIELDS = ("seq", "time", "category", "interaction", "action", "outcome", "status", "actor",
          "actor_kind", "actor_display", "actor_roles", "resource_type", "resource_id",
          "resource_version", "patients", "request_id", "purpose", "protected", "source_ip",
          "user_agent", "query", "hash")
MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
CATEGORIES = ("rest", "security", "ui")
OUTCOMES = ("success", "denied", "error")
_CHUNK = 64 * 1024
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def report_row(row: AuditRow) -> dict[str, Any]:
    """One record as the report's flat object (lists stay lists; CSV joins them)."""
    body = json.loads(row.body)
    actor = body.get("actor") or {}
    source = body.get("source") or {}
    return {
        "seq": row.seq, "time": body.get("time"), "category": row.category,
        "interaction": row.interaction, "action": action_of(row.interaction),
        "outcome": row.outcome, "status": row.status, "actor": row.actor_id,
        "actor_kind": row.actor_kind, "actor_display": actor.get("display"),
        "actor_roles": actor.get("roles") or [], "resource_type": row.rtype,
        "resource_id": row.rid, "resource_version": row.version_id,
        "patients": body.get("patients") or [], "request_id": row.request_id,
        "purpose": row.purpose, "protected": body.get("protected") or [],
        "source_ip": source.get("ip"), "user_agent": source.get("user_agent"),
        "query": body.get("query"), "hash": row.hash,
    }


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


def parse_sort(text: str | None) -> list[SortKey]:
    keys: list[SortKey] = []
    for part in (text or "time").split(","):
        name = part.strip()
        if not name:
            continue
        descending = name.startswith("-")
        keys.append(SortKey(repository.sort_field(name.lstrip("+-")), descending))
    return keys


def _values(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def _outcome_terms(value: str) -> tuple[Term, ...]:
    if value in OUTCOMES:
        return (Term("outcome", value),)
    if value in ("0", "4", "8", "12"):
        return outcome_terms(value)
    raise BadRequest(f"Invalid outcome {value!r}: use success, denied, error or 0/4/8/12",
                     expression=("outcome",))


def _type_terms(value: str) -> tuple[Term, ...]:
    if value in CATEGORIES:
        return (Term("category", value),)
    terms = type_terms(value)
    if not terms:
        raise BadRequest(f"Invalid type {value!r}: use rest, security, ui or a DCM event code",
                         expression=("type",))
    return terms


def build_filter(*, start: str | None, end: str | None, user: str | None,
                 patient: str | None, action: str | None, interaction: str | None,
                 outcome: str | None, kind: str | None) -> AuditFilter:
    flt = AuditFilter()
    if start:
        low = date_term("from", start).value[0]
        flt = flt.where(Term("time", (low, None)))
    if end:
        high = date_term("to", end).value[1]
        flt = flt.where(Term("time", (None, high)))
    if users := _values(user):
        flt = flt.where(*(Term("practitioner", u) if u.startswith("Practitioner/")
                          else Term("actor", u) for u in users))
    if patients := _values(patient):
        flt = flt.where(*(Term("patient", patient_id("patient", p)) for p in patients))
    if actions := _values(action):
        if any(a not in ACTION_CODES for a in actions):
            raise BadRequest(f"Invalid action: use {', '.join(ACTION_CODES)}",
                             expression=("action",))
        flt = flt.where(*(t for a in actions for t in action_terms(a)))
    if interactions := _values(interaction):
        flt = flt.where(*(t for i in interactions for t in subtype_terms(i)))
    if outcomes := _values(outcome):
        flt = flt.where(*(t for o in outcomes for t in _outcome_terms(o)))
    if kinds := _values(kind):
        flt = flt.where(*(t for k in kinds for t in _type_terms(k)))
    return flt


def _lines(rows: Iterator[AuditRow], fmt: str) -> Iterator[str]:
    if fmt == "ndjson":
        for row in rows:
            yield json.dumps(report_row(row), ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for row in rows:
        data = report_row(row)
        writer.writerow([_cell(data[f]) for f in FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def stream_report(engine: Engine, flt: AuditFilter, sort: Sequence[SortKey],
                  fmt: str) -> Iterator[bytes]:
    """The report's bytes in chunks; its own read transaction stays open while it streams."""
    with unit_of_work(engine, write=False) as session:
        pending: list[str] = []
        size = 0
        for line in _lines(repository.stream(session, flt, sort), fmt):
            pending.append(line)
            size += len(line)
            if size >= _CHUNK:
                yield "".join(pending).encode()
                pending, size = [], 0
        if pending:
            yield "".join(pending).encode()


def record_export(engine: Engine, pipeline: Pipeline, ctx: RequestContext, flt: AuditFilter,
                   detail: dict[str, Any], query: str) -> AuditFilter:
    try:
        with unit_of_work(engine) as session:
            scope = audit_scope(pipeline, session, ctx, "search-type")
    except Forbidden as err:
        # Refused in a transaction of its own, like a refused FHIR request.
        with unit_of_work(engine) as session:
            pipeline.recorder.record(session, ctx, AccessEvent(
                "audit-export", "AuditEvent", status=403, category="security",
                query=query or None, detail={"reason": err.diagnostics}))
        raise
    with unit_of_work(engine) as session:
        full = AuditFilter(scope.clauses + flt.clauses)
        detail["records"] = repository.count(session, full)
        pipeline.recorder.record(session, ctx, AccessEvent(
            "audit-export", "AuditEvent", query=query or None, detail=detail))
    pipeline.recorder.settle(engine)  # the report then lists its own record too
    return full


