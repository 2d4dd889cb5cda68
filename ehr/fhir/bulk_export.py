"""Bulk Data ``$export`` (FHIR Bulk Data Access 2.0): kick-off and the job that writes NDJSON.

Kick-off at the system level (``/$export``), for all patients (``/Patient/$export``) or for a
Group's members (``/Group/{id}/$export``) needs ``Prefer: respond-async`` and a system client
(SMART Backend Services). Only the types the client's scopes let it search are exported; the
access clause of searches (labels, Part 2 consent) filters every row, and psychotherapy and
SUD counselling notes never leave. The job runs in the worker that accepted it, in its own
thread, streaming each type in keyset batches to one file (constant memory); any worker
answers status polls from the job row (``ehr.api.bulk_data``).
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.clinical.notes.exclusion import excluded_from_bulk_text
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.errors import BadRequest, EhrError, Forbidden, outcome_of
from ehr.fhir import canonical_json
from ehr.fhir.everything import parse_since, parse_types
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.reader import REDISCLOSURE_ISSUE, part2_text
from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.store import compartment, export_jobs

log = logging.getLogger("ehr.export")

NDJSON = "application/fhir+ndjson"
FORMATS = frozenset({NDJSON, "application/ndjson", "ndjson"})
# Types no export ever includes: not stored as resources, or answered from the audit trail.
NEVER_EXPORTED = frozenset({"Parameters", "OperationOutcome", "Bundle", "AuditEvent"})
_KNOWN = frozenset({"_type", "_since", "_outputFormat", "_typeFilter", "patient",
                    "includeAssociatedData", "_elements"})
_HEARTBEAT_EVERY = 5000
# Files of this type are messages about the export (the manifest's ``error`` list), not data.
NOTICE_TYPE = "OperationOutcome"


def export_dir(pipeline: Pipeline) -> Path:
    return Path(pipeline.settings.var_dir) / "exports"


def status_url(base: str, job_id: str) -> str:
    return f"{base}/bulk-status/{job_id}"


def file_url(base: str, job_id: str, name: str) -> str:
    return f"{base}/bulk-files/{job_id}/{name}"


def _check_request(ex: Exchange) -> dict[str, str]:
    if (ex.request.prefer("respond-async") is None):
        raise BadRequest("Bulk export is asynchronous: send 'Prefer: respond-async'",
                         expression=("Prefer",))
    if ex.ctx.actor.kind != "client":
        raise Forbidden("Bulk export is for system clients (SMART Backend Services)")
    params = ex.search_params()
    lenient = ex.request.prefer("handling") == "lenient"
    unknown = sorted({k for k, _ in params} - _KNOWN)
    unsupported = sorted({k for k, _ in params} & {"_typeFilter", "patient",
                                                   "includeAssociatedData", "_elements"})
    if (unknown or unsupported) and not lenient:
        raise BadRequest(f"Unsupported $export parameter(s): {', '.join(unknown + unsupported)}"
                         " (send 'Prefer: handling=lenient' to have them ignored)",
                         code="not-supported", expression=tuple(unknown + unsupported))
    given = dict(params)
    fmt = given.get("_outputFormat")
    if fmt is not None and fmt not in FORMATS:
        raise BadRequest(f"_outputFormat {fmt!r} is not supported; use {NDJSON}",
                         expression=("_outputFormat",))
    return given


def _group_members(ex: Exchange, group_id: str) -> list[str]:
    stored = ex.reader.read("Group", group_id)
    group = canonical_json.loads(stored.content or "{}")
    members = []
    for member in group.get("member") or []:
        ref = str((member.get("entity") or {}).get("reference") or "")
        if ref.startswith("Patient/"):
            members.append(ref.removeprefix("Patient/"))
    return sorted(set(members))


def _permitted(ex: Exchange, wanted: list[str]) -> tuple[list[str], list[str]]:
    allowed, refused = [], []
    for rtype in wanted:
        try:
            ex.pipeline.guard.authorize(ex.session, ex.ctx, "search-type", rtype)
            allowed.append(rtype)
        except (Forbidden, EhrError):
            refused.append(rtype)
    return allowed, refused


def kick_off(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    given = _check_request(ex)
    since = parse_since(given.get("_since"))
    explicit = parse_types(given.get("_type"))
    level = "system" if rtype is None else ("group" if rtype == "Group" else "patient")
    patients = _group_members(ex, rid) if level == "group" and rid else None
    candidates = explicit or sorted(R4_RESOURCE_TYPES - NEVER_EXPORTED)
    types, refused = _permitted(ex, [t for t in candidates if t not in NEVER_EXPORTED])
    if explicit and refused:
        raise Forbidden(f"Your scopes do not cover: {', '.join(refused)}",
                        expression=("_type",))
    if not types:
        raise Forbidden("Your scopes cover no resource type to export")
    now = instants.now_us()
    job_id = uuid.uuid4().hex
    query = "&".join(f"{k}={v}" for k, v in ex.request.query)
    request_url = f"{ex.base}/{ex.request.path}" + (f"?{query}" if query else "")
    spec: dict[str, Any] = {"types": types, "since": since, "patients": patients,
                            "level": level, "group": rid}
    export_jobs.create(ex.session, job_id=job_id, owner=ex.ctx.actor.id,
                       request_url=request_url, level=level, spec=spec, now=now)
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:export", rtype, rid, status=202, patients=tuple(patients or ()),
        detail={"job": job_id, "phase": "kick-off", "types": len(types), "since": since}))
    runner = ExportRunner(ex.session.get_bind(), ex.pipeline)  # type: ignore[arg-type]
    ctx = replace(ex.ctx)
    # The thread starts once the job row is committed, so it always finds it.
    sa.event.listen(ex.session, "after_commit",
                    lambda _s: runner.start(job_id, ctx, ex.base), once=True)
    return FhirResponse(202, b"", {"Content-Location": status_url(ex.base, job_id)})


class ExportRunner:
    def __init__(self, engine: Engine, pipeline: Pipeline) -> None:
        self.engine = engine
        self.pipeline = pipeline

    def start(self, job_id: str, ctx: RequestContext, base: str) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(job_id, ctx, base),
                                  name=f"export-{job_id[:8]}", daemon=True)
        thread.start()
        return thread

    def _update(self, job_id: str, **values: Any) -> bool:
        with unit_of_work(self.engine, write=True) as session:
            return export_jobs.update(session, job_id, now=instants.now_us(), **values)

    def run(self, job_id: str, ctx: RequestContext, base: str) -> None:
        folder = export_dir(self.pipeline) / job_id
        try:
            with unit_of_work(self.engine, write=False) as session:
                job = export_jobs.get(session, job_id)
            if job is None or not self._update(job_id, state="running"):
                return
            folder.mkdir(parents=True, exist_ok=True)
            written = self._write(job, ctx, base, folder)
            if written is None:
                shutil.rmtree(folder, ignore_errors=True)
                return
            self._finish(job, ctx, *written)
        except Exception as exc:  # a failed job must say so; the client polls for it
            log.exception("export %s failed", job_id)
            shutil.rmtree(folder, ignore_errors=True)
            detail = exc.diagnostics if isinstance(exc, EhrError) else "internal error; logged"
            self._update(job_id, state="failed", error=detail,
                         finished_at=instants.now_us())

    def _write(self, job: export_jobs.ExportJob, ctx: RequestContext, base: str,
               folder: Path) -> tuple[list[dict[str, Any]], set[str]] | None:
        spec = job.spec
        outputs: list[dict[str, Any]] = []
        patients: set[str] = set()
        written = 0
        part2 = False
        for index, rtype in enumerate(spec["types"]):
            path = folder / f"{rtype}.ndjson"
            count = 0
            with unit_of_work(self.engine, write=False) as session, \
                    path.open("w", encoding="utf-8") as out:
                restriction = self.pipeline.guard.restriction(session, ctx, rtype)
                for row in compartment.stream(session, rtype=rtype, patients=spec["patients"],
                                              since=spec["since"], restriction=restriction):
                    if excluded_from_bulk_text(row.content):
                        continue
                    out.write(row.content)
                    out.write("\n")
                    part2 = part2 or part2_text(row.content)
                    if row.patient:
                        patients.add(row.patient)
                    count += 1
                    written += 1
                    if written % _HEARTBEAT_EVERY == 0 and not self._update(
                            job.job_id, progress=f"{rtype}: {count} resources"):
                        return None  # cancelled
            if count:
                outputs.append({"type": rtype, "url": file_url(base, job.job_id, path.name),
                                "count": count})
            else:
                path.unlink()
            if index % 20 == 0 and not self._update(
                    job.job_id, progress=f"{index + 1} of {len(spec['types'])} types"):
                return None
        if part2:
            # 42 CFR 2.32: the disclosure carries the notice, as the manifest's message file.
            notice = folder / f"{NOTICE_TYPE}.ndjson"
            notice.write_text(canonical_json.dumps_any(outcome_of([REDISCLOSURE_ISSUE])) + "\n",
                              encoding="utf-8")
            outputs.append({"type": NOTICE_TYPE, "url": file_url(base, job.job_id, notice.name),
                            "count": 1})
        return outputs, patients

    def _finish(self, job: export_jobs.ExportJob, ctx: RequestContext,
                outputs: list[dict[str, Any]], patients: set[str]) -> None:
        spec = job.spec
        with unit_of_work(self.engine, write=True) as session:
            # The export's own record names every patient whose data it wrote.
            self.pipeline.recorder.record(session, ctx, AccessEvent(
                "operation:export", "Group" if spec["level"] == "group" else None,
                spec.get("group"), patients=tuple(sorted(patients)),
                detail={"job": job.job_id, "phase": "completed",
                        "counts": {o["type"]: o["count"] for o in outputs
                                   if o["type"] != NOTICE_TYPE}}))
            export_jobs.update(session, job.job_id, now=instants.now_us(), state="completed",
                               output=outputs, finished_at=instants.now_us(), progress=None)


def register_export_operations(registry: OperationRegistry) -> None:
    definition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{}"
    for types, level, name in ((("*",), "system", "export"),
                               (("Patient",), "type", "patient-export"),
                               (("Group",), "instance", "group-export")):
        registry.register(Operation(
            "export", kick_off, types=types, levels=(level,), methods=("GET", "POST"),
            definition=definition.format(name),
            documentation="Bulk Data export (NDJSON, asynchronous: Prefer: respond-async); "
                          "system clients; _type, _since, _outputFormat."))
