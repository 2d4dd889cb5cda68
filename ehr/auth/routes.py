"""HTTP endpoints of the identity layer: SMART configuration, token, JWKS, re-authentication.

Include this router before the FHIR router: the FHIR router's catch-all owns ``/fhir/*`` and
would otherwise answer ``/fhir/.well-known/smart-configuration``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.clients import CLIENT_ALGORITHMS
from ehr.auth.oauth import ANONYMOUS, GRANT_TYPES, OAuthError, parse_form
from ehr.auth.reauth import refused, require_password
from ehr.auth.service import AuthService
from ehr.context import Actor, RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.errors import BadRequest, EhrError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_BODY = 64 * 1024


def request_fhir_base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/fhir"


def security_context(request: Request, actor: Actor = ANONYMOUS,
                     purpose_of_use: str = "TREAT") -> RequestContext:
    """Who asks and from where, for the security events an auth endpoint records."""
    client = request.client
    return RequestContext(actor=actor, request_id=request.headers.get("x-request-id")
                          or uuid.uuid4().hex, source_ip=client.host if client else None,
                          user_agent=request.headers.get("user-agent"),
                          purpose_of_use=purpose_of_use)


def _headers(ctx: RequestContext) -> dict[str, str]:
    return {**NO_STORE, "X-Request-ID": ctx.request_id}


def record_security(service: AuthService, ctx: RequestContext, event: AccessEvent) -> None:
    """Record a security event in a transaction of its own (the request itself failed)."""
    if service.recorder is None:
        return
    with unit_of_work(service.engine) as session:
        service.recorder.record(session, ctx, event)


def smart_configuration(service: AuthService, fhir_base: str) -> dict[str, Any]:
    urls = service.urls(fhir_base)
    return {
        "issuer": urls.issuer,
        "jwks_uri": urls.jwks_uri,
        "token_endpoint": urls.token_endpoint,
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(CLIENT_ALGORITHMS),
        # Only what is implemented: no authorization endpoint (so no response types or PKCE
        # methods) and no OpenID Connect id_token (so no openid/fhirUser scopes).
        "scopes_supported": ["system/*.cruds", "system/*.rs", "user/*.cruds", "user/*.rs"],
        "capabilities": ["client-confidential-asymmetric", "permission-user",
                         "permission-v1", "permission-v2"],
        "reauth_endpoint": urls.reauth_endpoint,
    }


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest("request body too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest("request body too large")
    return body


def _reauth_fields(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise BadRequest("body is not JSON") from exc
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data
    try:
        return dict(parse_form(body, content_type))
    except OAuthError as exc:
        raise BadRequest(exc.description) from exc


def build_auth_router(service: AuthService) -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.get("/fhir/.well-known/smart-configuration")
    def smart(request: Request) -> JSONResponse:
        return JSONResponse(smart_configuration(service, request_fhir_base(request)))

    @router.get("/auth/jwks")
    def jwks() -> JSONResponse:
        return JSONResponse(service.key.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @router.post("/auth/token")
    async def token(request: Request) -> JSONResponse:
        urls = service.urls(request_fhir_base(request))
        ctx = security_context(request)
        endpoint = service.token_endpoint
        form: dict[str, str] = {}
        try:
            try:
                form = parse_form(await _body(request), request.headers.get("content-type"))
            except BadRequest as err:
                raise OAuthError("invalid_request", err.diagnostics) from err
            # Password hashing is deliberately slow CPU work: keep it off the event loop.
            result = await run_in_threadpool(endpoint.handle, form, urls, ctx)
        except OAuthError as err:
            await run_in_threadpool(endpoint.record_refusal, ctx, form, err)
            return JSONResponse(err.body(), err.status, headers=_headers(ctx))
        return JSONResponse(result.body(), headers=_headers(ctx))

    @router.post("/auth/reauth")
    async def reauth(request: Request) -> JSONResponse:
        ctx = security_context(request)
        recorded = False
        try:
            actor = service.actor(request.headers.get("authorization"),
                                  request_fhir_base(request))
            ctx = replace(ctx, actor=actor)
            if actor.kind != "user":
                raise BadRequest("only users re-authenticate")
            fields = _reauth_fields(await _body(request),
                                    request.headers.get("content-type", ""))
            password = require_password(fields.get("password"))
            action = str(fields.get("action") or "").strip()
            if not action or len(action) > 64:
                # A signature names what it signs (21 CFR 11.50): an assertion for no action
                # would be accepted by none.
                raise BadRequest("action is required (at most 64 characters): what the "
                                 "signature is for, e.g. note-signing")

            def issue() -> Any:
                # The failure count, the login failure and the re-authentication's record
                # commit together, before the answer leaves.
                with bind_context(ctx), unit_of_work(service.engine) as session:
                    issued = service.assertions.issue(session, actor.id, password, action)
                    if service.recorder is not None:
                        service.recorder.record(session, ctx, AccessEvent(
                            "reauth", status=200 if issued else 403, category="security",
                            detail={"action": action}))
                return issued

            issued = await run_in_threadpool(issue)
            recorded = True
            if issued is None:
                raise refused()
        except EhrError as err:
            if not recorded:
                await run_in_threadpool(record_security, service, ctx, AccessEvent(
                    "reauth", status=err.status, category="security",
                    detail={"reason": err.diagnostics[:200]}))
            raise
        return JSONResponse({"assertion": issued.assertion, "expires_in": issued.expires_in,
                             "token_type": "urn:ehr:signing-assertion"}, headers=_headers(ctx))

    @router.get("/auth/me")
    def me(request: Request) -> JSONResponse:
        actor = service.actor(request.headers.get("authorization"), request_fhir_base(request))
        return JSONResponse({"id": actor.id, "kind": actor.kind, "display": actor.display,
                             "roles": sorted(actor.roles), "scopes": sorted(actor.scopes),
                             "practitioner": actor.practitioner})

    return router
