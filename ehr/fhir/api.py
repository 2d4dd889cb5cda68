"""FastAPI binding of the FHIR router: every ``/fhir/*`` request becomes one ``FhirRequest``."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ehr.context import SYSTEM, Actor, RequestContext
from ehr.errors import PayloadTooLarge, Unauthorized
from ehr.fhir.bundles import outcome_bytes
from ehr.fhir.http import FHIR_JSON, FhirRequest, FhirResponse
from ehr.fhir.router import FhirRouter

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` (chunked uploads included)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def base_url(request: Request, configured: str) -> str:
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}/fhir"


ANONYMOUS = Actor(id="anonymous", kind="anonymous", display="unauthenticated")
# Paths under /fhir that anyone may read: what a client needs before it has a token.
PUBLIC_PATHS = frozenset({"metadata"})
Authenticator = Callable[[str | None, str], Actor]


def request_context(request: Request, base: str, actor: Actor = SYSTEM) -> RequestContext:
    client = request.client
    return RequestContext(
        actor=actor,
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
        source_ip=client.host if client else None,
        user_agent=request.headers.get("user-agent"),
        base_url=base,
    )


def to_response(result: FhirResponse, request_id: str, head: bool = False) -> Response:
    headers = dict(result.headers)
    headers["X-Request-ID"] = request_id
    body = b"" if head or result.status == 304 else result.body
    media = result.content_type if body else None
    return Response(content=body, status_code=result.status, headers=headers, media_type=media)


def build_router(fhir: FhirRouter, authenticate: Authenticator | None) -> APIRouter:
    """``authenticate`` turns the Authorization header into an actor (None: no access control,
    every request acts as the service itself — benchmarks only)."""
    api = APIRouter()
    limit = fhir.pipeline.settings.max_body_bytes

    async def endpoint(request: Request, path: str = "") -> Response:
        base = base_url(request, fhir.pipeline.settings.base_url)
        actor = SYSTEM
        if authenticate is not None and path.strip("/") not in PUBLIC_PATHS:
            try:
                actor = authenticate(request.headers.get("authorization"), base)
            except Unauthorized as err:
                anonymous = request_context(request, base, ANONYMOUS)
                refused = FhirRequest(request.method, path,
                                      list(request.query_params.multi_items()))
                await run_in_threadpool(fhir.audit_refusal, refused, anonymous, 401,
                                        err.diagnostics)
                return to_response(FhirResponse(401, outcome_bytes(err.issues), err.headers),
                                   anonymous.request_id)
        ctx = request_context(request, base, actor)
        try:
            body = await read_body(request, limit)
        except PayloadTooLarge as err:
            return to_response(FhirResponse(413, outcome_bytes(err.issues)), ctx.request_id)
        fhir_request = FhirRequest(
            method=request.method,
            path=path,
            query=list(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=base,
        )
        result = await run_in_threadpool(fhir.handle, fhir_request, ctx)
        return to_response(result, ctx.request_id, head=request.method == "HEAD")

    api.add_api_route("/fhir", endpoint, methods=METHODS, include_in_schema=False)
    api.add_api_route("/fhir/", endpoint, methods=METHODS, include_in_schema=False)
    api.add_api_route("/fhir/{path:path}", endpoint, methods=METHODS, include_in_schema=False)
    return api


__all__ = ["FHIR_JSON", "build_router"]
