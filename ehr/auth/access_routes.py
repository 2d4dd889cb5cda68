"""HTTP endpoints for break-the-glass requests and their compliance review queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from ehr.auth.break_glass import BreakGlass
from ehr.auth.routes import request_fhir_base
from ehr.auth.service import AuthService
from ehr.context import RequestContext
from ehr.db import unit_of_work


def _context(service: AuthService, request: Request) -> RequestContext:
    actor = service.actor(request.headers.get("authorization"), request_fhir_base(request))
    client = request.client
    return RequestContext(actor=actor, request_id=request.headers.get("x-request-id")
                          or uuid.uuid4().hex, source_ip=client.host if client else None,
                          user_agent=request.headers.get("user-agent"), purpose_of_use="ETREAT")


def build_access_router(service: AuthService, break_glass: BreakGlass) -> APIRouter:
    router = APIRouter(prefix="/auth/break-glass", tags=["break-the-glass"])

    @router.post("", status_code=201, summary="Request emergency access to a patient")
    async def request_access(
        request: Request,
        patient: Annotated[str, Body(description="Patient id or Patient/<id>")],
        reason: Annotated[str, Body(description="Why emergency access is needed")],
    ) -> dict[str, Any]:
        ctx = _context(service, request)

        def run() -> dict[str, Any]:
            with unit_of_work(service.engine) as session:
                grant = break_glass.request(session, ctx, patient, reason)
            return {"id": grant.id, "patient": f"Patient/{grant.patient_id}",
                    "expires_at_us": grant.expires_at}

        return await run_in_threadpool(run)

    @router.get("", summary="The review queue (compliance)")
    async def queue(request: Request, status: str = "open") -> list[dict[str, Any]]:
        ctx = _context(service, request)

        def run() -> list[dict[str, Any]]:
            with unit_of_work(service.engine, write=False) as session:
                rows = break_glass.queue(session, ctx, open_only=status == "open")
            return [row.model_dump() for row in rows]

        return await run_in_threadpool(run)

    @router.post("/{grant_id}/review", status_code=204, summary="Sign off a grant (compliance)")
    async def review(request: Request, grant_id: int,
                     note: Annotated[str, Body(embed=True)]) -> None:
        ctx = _context(service, request)

        def run() -> None:
            with unit_of_work(service.engine) as session:
                break_glass.review(session, ctx, grant_id, note)

        await run_in_threadpool(run)

    return router
