"""``GET /api/audit/report``: the audit trail as CSV or NDJSON (ONC 170.315(d)(3)).

Filtered by time range, user, patient, action or interaction, outcome and type; sortable by
every field (``sort=-time,actor``). The database sorts and the response streams rows in
batches from a cursor, so memory stays constant however long the trail. Who may read it is
decided exactly as for ``/fhir/AuditEvent`` (compliance everything, admin security events),
and the export itself is recorded (interaction ``audit-export``) and committed before the
first byte leaves: if it cannot be recorded, nothing is sent (503).

CSV cells that a spreadsheet would run as a formula (leading ``= + - @``, tab or CR) are
prefixed with an apostrophe: user agents and queries are attacker-chosen text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ehr.audit import repository
from ehr.context import SYSTEM, Actor
from ehr.errors import BadRequest
from ehr.fhir.api import base_url, request_context
from ehr.fhir.audit_report import (
    FIELDS,
    MEDIA,
    build_filter,
    parse_sort,
    record_export,
    stream_report,
)
from ehr.fhir.pipeline import Pipeline

Authenticator = Callable[[str | None, str], Actor]

_DATE_HELP = ("FHIR date, dateTime or instant at any precision (2024, 2024-03, "
              "2024-03-01T10:00Z...)")


def build_audit_report_router(engine: Engine, pipeline: Pipeline,
                              authenticate: Authenticator | None) -> APIRouter:
    """``authenticate`` turns the Authorization header into an actor (None: no access
    control, the service itself acts)."""
    router = APIRouter(prefix="/api/audit", tags=["audit"])
    ok = {"description": "The matching audit records, streamed",
          "content": {MEDIA["csv"]: {"schema": {"type": "string"}},
                      MEDIA["ndjson"]: {"schema": {"type": "string"}}}}
    refusal = {"content": {"application/json": {"schema": {"type": "object"}}}}

    @router.get(
        "/report", response_class=StreamingResponse,
        summary="Audit trail report (ONC 170.315(d)(3)) as CSV or NDJSON",
        description="Streams audit records in constant memory, filtered and sorted by any "
                    f"field. Fields: {', '.join(FIELDS)}. Compliance reads every record, "
                    "admin security events only; the export is itself audited.",
        responses={200: ok, 400: {"description": "Bad date, sort field or filter", **refusal},
                   401: {"description": "No usable bearer token", **refusal},
                   403: {"description": "Not permitted to read the audit trail", **refusal}})
    async def report(
        request: Request,
        start: Annotated[str | None, Query(alias="from", description=f"Earliest time: "
                                           f"{_DATE_HELP}; inclusive")] = None,
        to: Annotated[str | None, Query(description=f"Latest time: {_DATE_HELP}; the whole "
                                        "period it names is included")] = None,
        sort: Annotated[str | None, Query(description="Comma-separated fields, '-' for "
                                          "descending, e.g. -time,actor. Sortable: "
                                          + ", ".join(sorted(repository.SORT_FIELDS)))] = None,
        format: Annotated[str, Query(description="csv (with a header row) or ndjson "
                                     "(one JSON object per line)")] = "csv",
        user: Annotated[str | None, Query(description="User name, client id or "
                                          "Practitioner/<id> (comma: any of)")] = None,
        patient: Annotated[str | None, Query(description="Patient id or Patient/<id> "
                                             "(comma: any of)")] = None,
        action: Annotated[str | None, Query(description="BALP action C, R, U, D or E")] = None,
        interaction: Annotated[str | None, Query(description="Interaction: read, vread, "
                                                 "search-type, create, update, delete, "
                                                 "history-instance, transaction, operation, "
                                                 "token-issued, ...")] = None,
        outcome: Annotated[str | None, Query(description="success, denied, error, or the "
                                             "AuditEvent codes 0, 4, 8, 12")] = None,
        type: Annotated[str | None, Query(description="Category rest, security or ui, or "
                                          "a DCM event type code (110114, 110113...)")] = None,
    ) -> StreamingResponse:
        base = base_url(request, pipeline.settings.base_url)
        actor = SYSTEM
        if authenticate is not None:
            actor = authenticate(request.headers.get("authorization"), base)
        ctx = request_context(request, base, actor)
        if format not in MEDIA:
            raise BadRequest(f"Invalid format {format!r}: use csv or ndjson",
                             expression=("format",))
        keys = parse_sort(sort)
        flt = build_filter(start=start, end=to, user=user, patient=patient, action=action,
                           interaction=interaction, outcome=outcome, kind=type)
        detail = {"format": format, "sort": ",".join(("-" if k.descending else "") + k.field
                                                      for k in keys)}
        full = await run_in_threadpool(record_export, engine, pipeline, ctx, flt, detail,
                                       str(request.url.query))
        headers = {"X-Request-ID": ctx.request_id, "Content-Disposition":
                   f'attachment; filename="audit-report.{format}"'}
        return StreamingResponse(stream_report(engine, full, keys, format),
                                 media_type=MEDIA[format], headers=headers)

    return router
