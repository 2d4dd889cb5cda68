"""Composition root: build the FastAPI application and wire routers, pipeline and hooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from ehr import __version__
from ehr.api.audit_report import build_audit_report_router
from ehr.api.bulk_data import build_bulk_data_router
from ehr.api.ledger import build_ledger_router
from ehr.audit.recorder import AuditRecorder
from ehr.audit.sequencer import CheckpointPolicy, Sequencer
from ehr.auth.access_routes import build_access_router
from ehr.auth.break_glass import BreakGlass
from ehr.auth.care_teams import register_care_team_rules
from ehr.auth.checkpoint_signing import checkpoint_signer
from ehr.auth.keys import load_or_create_server_key
from ehr.auth.policy import PolicyGuard
from ehr.auth.routes import build_auth_router
from ehr.auth.service import AuthService
from ehr.auth.web_sessions import WebSessions
from ehr.clinical.dosing.rules import register_dosing_rules
from ehr.clinical.eligibility_rules import register_eligibility_rules
from ehr.clinical.notes.rules import register_note_rules
from ehr.clinical.score_observations import register_screening_rules
from ehr.clinical.sessions.lifecycle import register_session_rules
from ehr.config import Settings, get_settings
from ehr.db import create_db_engine
from ehr.errors import EhrError, Issue
from ehr.fhir.api import build_router
from ehr.fhir.bundles import outcome_bytes
from ehr.fhir.capability import NOT_STORED
from ehr.fhir.http import FHIR_JSON
from ehr.fhir.pipeline import NullRecorder, Pipeline
from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.fhir.router import FhirRouter
from ehr.instants import now_us
from ehr.web.pages import Pages
from ehr.web.site import install_web
from ehr.web.templating import Templates

log = logging.getLogger("ehr")

_STATUS_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def build_recorder(settings: Settings) -> AuditRecorder:
    key = load_or_create_server_key(settings)
    policy = CheckpointPolicy(settings.audit_checkpoint_every_records,
                              settings.audit_checkpoint_every_minutes * 60 * 1_000_000)
    return AuditRecorder(Sequencer(checkpoint_signer(key), policy), now_us,
                         settings.audit_seal_interval_ms)


def build_pipeline(settings: Settings) -> Pipeline:
    """The one place where guards, the audit recorder and clinical rules are plugged in."""
    pipeline = Pipeline(settings, recorder=build_recorder(settings))
    if not settings.audit_enabled:
        log.warning("EHR_AUDIT_ENABLED is off: requests are NOT audited (benchmarks only)")
        pipeline.recorder = NullRecorder()
    if settings.auth_required:
        pipeline.guard = PolicyGuard(now_us, R4_RESOURCE_TYPES - NOT_STORED)
    register_care_team_rules(pipeline.rules, now_us)
    register_eligibility_rules(pipeline.rules)
    register_note_rules(pipeline.rules)
    register_screening_rules(pipeline.rules)
    register_dosing_rules(pipeline.rules, settings, lambda: pipeline.clock())
    register_session_rules(pipeline.rules)
    return pipeline


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or create_db_engine(settings)
    pipeline = build_pipeline(settings)
    fhir = FhirRouter(engine, pipeline)
    auth = AuthService.create(engine, settings, recorder=pipeline.recorder)
    pipeline.assertions = auth.assertions
    if not settings.auth_required:
        log.warning("EHR_AUTH_REQUIRED is off: /fhir runs WITHOUT access control")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # Stop the audit sealer and chain what it leaves (it would be sealed later anyway).
        close = getattr(pipeline.recorder, "close", None)
        if close is not None:
            close()

    app = FastAPI(title="ehr", version=__version__, lifespan=lifespan,
                  description="FHIR R4 record service for ketamine-assisted therapy programs")
    app.state.settings = settings
    app.state.engine = engine
    app.state.pipeline = pipeline
    app.state.fhir = fhir
    app.state.auth = auth
    # The auth routes first: the FHIR router's catch-all owns every other /fhir path.
    app.include_router(build_auth_router(auth))
    break_glass = BreakGlass(now_us, settings.break_glass_minutes)
    app.include_router(build_access_router(auth, break_glass))
    app.include_router(build_audit_report_router(
        engine, pipeline, auth.actor if settings.auth_required else None))
    app.include_router(build_ledger_router(
        engine, pipeline, auth, auth.actor if settings.auth_required else None))
    app.include_router(build_bulk_data_router(
        engine, pipeline, auth.actor if settings.auth_required else None))
    app.include_router(build_router(fhir, auth.actor if settings.auth_required else None))

    install_web(app, Pages(engine, fhir, pipeline, auth, WebSessions(auth.auth),
                           Templates(settings.clinic_timezone)), break_glass)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    def _fhir_error(request: Request, status: int, issue: Issue) -> Response:
        if request.url.path.startswith("/fhir"):
            return Response(outcome_bytes([issue]), status, media_type=FHIR_JSON)
        return JSONResponse({"detail": issue.diagnostics}, status)

    @app.exception_handler(EhrError)
    async def ehr_error(request: Request, exc: EhrError) -> Response:
        if request.url.path.startswith("/fhir"):
            return Response(outcome_bytes(exc.issues), exc.status, headers=exc.headers,
                            media_type=FHIR_JSON)
        return JSONResponse({"detail": exc.diagnostics,
                             "issues": [i.to_fhir() for i in exc.issues]},
                            exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "processing")
        return _fhir_error(request, exc.status_code, Issue(code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _fhir_error(request, 400, Issue("invalid", str(exc.errors())))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _fhir_error(request, 500, Issue("exception", "Internal error; it was logged"))

    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (settings from the environment)."""
    return create_app()
