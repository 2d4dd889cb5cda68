"""HTTP endpoints for break-the-glass requests and their compliance review queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Request, Response
from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.break_glass import EMERGENCY, BreakGlass
from ehr.auth.routes import record_security, request_fhir_base, security_context
from ehr.auth.service import AuthService
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.errors import EhrError

T = TypeVar("T")

# HL7 v3 PurposeOfUse of reading and reviewing the queue: compliance oversight.
COMPLIANCE = "HCOMPL"


async def _audited(service: AuthService, request: Request, response: Response,
                   interaction: str, purpose: str, work: Callable[[RequestContext], T]) -> T:
    """Run ``work`` off the event loop; a refusal (401, 403, 404, ...) is recorded in a
    transaction of its own, since the request's own transaction rolled back."""
    ctx = security_context(request, purpose_of_use=purpose)
    response.headers["X-Request-ID"] = ctx.request_id
    try:
        ctx = replace(ctx, actor=service.actor(request.headers.get("authorization"),
                                               request_fhir_base(request)))
        return await run_in_threadpool(work, ctx)
    except EhrError as err:
        err.headers.setdefault("X-Request-ID", ctx.request_id)
        if err.status != 503:  # the trail itself is down: nothing more to record
            await run_in_threadpool(record_security, service, ctx, AccessEvent(
                interaction, status=err.status, category="security",
                detail={"reason": err.diagnostics[:200]}))
        raise


def build_access_router(service: AuthService, break_glass: BreakGlass) -> APIRouter:
    router = APIRouter(prefix="/auth/break-glass", tags=["break-the-glass"])
    if break_glass.recorder is None:
        break_glass = break_glass.with_recorder(service.recorder)

    @router.post("", status_code=201, summary="Request emergency access to a patient")
    async def request_access(
        request: Request, response: Response,
        patient: Annotated[str, Body(description="Patient id or Patient/<id>")],
        reason: Annotated[str, Body(description="Why emergency access is needed")],
    ) -> dict[str, Any]:
        def run(ctx: RequestContext) -> dict[str, Any]:
            with unit_of_work(service.engine) as session:
                grant = break_glass.request(session, ctx, patient, reason)
            return {"id": grant.id, "patient": f"Patient/{grant.patient_id}",
                    "expires_at_us": grant.expires_at}

        return await _audited(service, request, response, "break-glass-refused", EMERGENCY, run)

    @router.get("", summary="The review queue (compliance)")
    async def queue(request: Request, response: Response,
                    status: str = "open") -> list[dict[str, Any]]:
        def run(ctx: RequestContext) -> list[dict[str, Any]]:
            # Writing: reading the queue (patients and reasons) is itself audited.
            with unit_of_work(service.engine) as session:
                rows = break_glass.queue(session, ctx, open_only=status == "open")
            return [row.model_dump() for row in rows]

        return await _audited(service, request, response, "break-glass-queue", COMPLIANCE, run)

    @router.post("/{grant_id}/review", status_code=204, summary="Sign off a grant (compliance)")
    async def review(request: Request, response: Response, grant_id: int,
                     note: Annotated[str, Body(embed=True)]) -> None:
        def run(ctx: RequestContext) -> None:
            with unit_of_work(service.engine) as session:
                break_glass.review(session, ctx, grant_id, note)

        await _audited(service, request, response, "break-glass-reviewed", COMPLIANCE, run)

    return router
