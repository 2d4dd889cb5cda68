"""Bulk Data status polling, cancellation and file download (``/fhir/bulk-status/...``,
``/fhir/bulk-files/...``): the asynchronous half of ``$export``.

Plain FastAPI routes, mounted before the FHIR catch-all, because an NDJSON file is streamed
from disk rather than built in memory. Only the client that started a job may poll it or
fetch its files; anyone else gets 404, as for a job that does not exist.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.context import SYSTEM, Actor, RequestContext
from ehr.db import unit_of_work
from ehr.errors import Issue, NotFound
from ehr.fhir.api import base_url, request_context
from ehr.fhir.bulk_export import NDJSON, NOTICE_TYPE, export_dir
from ehr.fhir.bundles import outcome_bytes
from ehr.fhir.http import FHIR_JSON
from ehr.fhir.pipeline import Pipeline
from ehr.store import export_jobs
from ehr.store.export_jobs import ExportJob

Authenticator = Callable[[str | None, str], Actor]
# A running job whose worker has not written for this long is taken for dead.
STALE_US = 15 * 60 * 1_000_000
_FILE = re.compile(r"^[A-Za-z]+\.ndjson$")
_JOB = re.compile(r"^[0-9a-f]{32}$")


def _manifest(job: ExportJob) -> dict[str, object]:
    files = job.output or []
    return {"transactionTime": instants.instant(job.transaction_time),
            "request": job.request_url, "requiresAccessToken": True,
            "output": [f for f in files if f["type"] != NOTICE_TYPE],
            "error": [f for f in files if f["type"] == NOTICE_TYPE]}


def build_bulk_data_router(engine: Engine, pipeline: Pipeline,
                           authenticate: Authenticator | None) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["bulk data"])

    def context(request: Request) -> RequestContext:
        base = base_url(request, pipeline.settings.base_url)
        actor = SYSTEM
        if authenticate is not None:
            actor = authenticate(request.headers.get("authorization"), base)
        return request_context(request, base, actor)

    def owned(ctx: RequestContext, job_id: str) -> ExportJob:
        job = None
        if _JOB.match(job_id):
            with unit_of_work(engine, write=False) as session:
                job = export_jobs.get(session, job_id)
        if job is None or job.owner != ctx.actor.id or job.state == "cancelled":
            raise NotFound(f"No export job {job_id}")
        return job

    @router.get("/bulk-status/{job_id}", summary="Bulk export status (202 running, 200 done)")
    async def status(request: Request, job_id: str) -> Response:
        ctx = context(request)
        job = await run_in_threadpool(owned, ctx, job_id)
        running = job.state in ("accepted", "running")
        if running and instants.now_us() - job.heartbeat_at > STALE_US:
            return Response(outcome_bytes_failed("the export stopped; start it again"), 500,
                            media_type=FHIR_JSON)
        if running:
            return Response(status_code=202, headers={
                "X-Progress": job.progress or job.state, "Retry-After": "2"})
        if job.state == "failed":
            return Response(outcome_bytes_failed(job.error or "export failed"), 500,
                            media_type=FHIR_JSON)
        return Response(json.dumps(_manifest(job)), 200, media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @router.delete("/bulk-status/{job_id}", summary="Cancel a bulk export and delete its files")
    async def cancel(request: Request, job_id: str) -> Response:
        ctx = context(request)

        def run() -> None:
            owned(ctx, job_id)
            with unit_of_work(engine, write=True) as session:
                export_jobs.update(session, job_id, now=instants.now_us(), state="cancelled")
                pipeline.recorder.record(session, ctx, AccessEvent(
                    "operation:export", detail={"job": job_id, "phase": "cancelled"}))
            shutil.rmtree(export_dir(pipeline) / job_id, ignore_errors=True)

        await run_in_threadpool(run)
        return Response(status_code=202)

    @router.get("/bulk-files/{job_id}/{name}", summary="One NDJSON file of a finished export")
    async def download(request: Request, job_id: str, name: str) -> Response:
        ctx = context(request)
        job = await run_in_threadpool(owned, ctx, job_id)
        listed = {str(o["url"]).rsplit("/", 1)[-1]: o for o in job.output or []}
        path = export_dir(pipeline) / job_id / name
        if job.state != "completed" or not _FILE.match(name) or name not in listed \
                or not path.is_file():
            raise NotFound(f"No file {name} in export {job_id}")

        def record() -> None:
            with unit_of_work(engine, write=True) as session:
                pipeline.recorder.record(session, ctx, AccessEvent(
                    "operation:export", listed[name]["type"], detail={
                        "job": job_id, "phase": "download", "file": name,
                        "count": listed[name]["count"]}))

        # The download is on record before the first byte leaves.
        await run_in_threadpool(record)
        return FileResponse(path, media_type=NDJSON, headers={"Cache-Control": "no-store"})

    return router


def outcome_bytes_failed(message: str) -> bytes:
    return outcome_bytes([Issue("exception", message)])
