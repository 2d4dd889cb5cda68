"""The FHIR router: one request in, one response out, independent of the web framework.

It owns the request's unit of work (one transaction), dispatches to the interaction handlers
and renders every ``EhrError`` as an OperationOutcome with its HTTP status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ehr.context import RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.errors import (
    BadRequest,
    EhrError,
    Issue,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from ehr.fhir import audit_search, bundles, interactions
from ehr.fhir.capability import capability_statement
from ehr.fhir.http import FhirRequest, FhirResponse, accepts_json
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import OperationRegistry, default_operations
from ehr.fhir.pipeline import AccessEvent, NullRecorder, Pipeline
from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.fhir.transaction import process_bundle

log = logging.getLogger("ehr.fhir")

READ_ONLY_TYPES = frozenset({"AuditEvent"})
_Route = Callable[[], FhirResponse]


def interaction_of(method: str, parts: list[str]) -> str:
    """The FHIR interaction a request path names (for auditing requests that failed early)."""
    if not parts:
        return "transaction" if method == "POST" else "search-system"
    op = next((p[1:] for p in parts if p.startswith("$")), None)
    if op:
        return f"operation:{op}"
    if "_history" in parts:
        if len(parts) == 4:
            return "vread"
        return "history-" + {1: "system", 2: "type"}.get(len(parts), "instance")
    if len(parts) == 1 or parts[1] == "_search":
        return {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(
            method if parts[-1] != "_search" else "GET", "search-type")
    return {"GET": "read", "HEAD": "read", "PUT": "update", "DELETE": "delete"}.get(
        method, method.lower())


class FhirRouter:
    def __init__(
        self, engine: Engine, pipeline: Pipeline, operations: OperationRegistry | None = None
    ) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.operations = operations or default_operations()

    def handle(self, request: FhirRequest, ctx: RequestContext) -> FhirResponse:
        with bind_context(ctx):
            try:
                self._precheck(request)
                with unit_of_work(self.engine, write=self._writes(request)) as session:
                    ex = Exchange(self.pipeline, session, ctx, request)
                    return self._dispatch(ex)
            except EhrError as err:
                self._audit_failure(request, ctx, err.status, err.diagnostics)
                return FhirResponse(err.status, bundles.outcome_bytes(err.issues),
                                    dict(err.headers))
            except OperationalError as exc:
                log.warning("database unavailable: %s", type(exc).__name__)
                self._audit_failure(request, ctx, 503, "database unavailable")
                down = ServiceUnavailable("The database is unavailable; retry later")
                return FhirResponse(503, bundles.outcome_bytes(down.issues), {"Retry-After": "5"})
            except DBAPIError as exc:
                log.exception("database error")
                self._audit_failure(request, ctx, 500, f"database error {type(exc.orig).__name__}")
                issue = Issue("exception", f"Database error: {type(exc.orig).__name__}")
                return FhirResponse(500, bundles.outcome_bytes([issue]))

    # -- checks ---------------------------------------------------------------------------

    def _precheck(self, request: FhirRequest) -> None:
        fmt = next((v for k, v in request.query if k == "_format"), None)
        if not accepts_json(request.header("accept"), fmt) and not self._html_page(request, fmt):
            raise NotAcceptable("Only JSON is supported (application/fhir+json)")
        if len(request.body) > self.pipeline.settings.max_body_bytes:
            raise PayloadTooLarge(
                f"The body exceeds {self.pipeline.settings.max_body_bytes} bytes")
        for key, value in request.query:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
            if "\x00" in key or "\x00" in value:
                raise BadRequest(f"Parameter {key!r} contains a NUL character",
                                 expression=(key.replace("\x00", ""),))

    def _html_page(self, request: FhirRequest, fmt: str | None) -> bool:
        """An operation with a printable page (``$rems-form``) answers text/html itself."""
        asked = (fmt or "").lower() in ("html", "text/html") or \
            "text/html" in (request.header("accept") or "").lower()
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        return asked and last.startswith("$") and self.operations.serves_html(last[1:])

    def _writes(self, request: FhirRequest) -> bool:
        if not isinstance(self.pipeline.recorder, NullRecorder):
            return True  # every request appends to the audit trail
        if request.method in ("GET", "HEAD"):
            return False
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        return not (last == "_search" or last == "$validate")

    def audit_refusal(
        self, request: FhirRequest, ctx: RequestContext, status: int, reason: str
    ) -> None:
        """Record a request refused before it reached the router (e.g. a 401)."""
        self._audit_failure(request, ctx, status, reason)

    def _audit_failure(
        self, request: FhirRequest, ctx: RequestContext, status: int, reason: str
    ) -> None:
        # Denied and failed attempts are recorded in a transaction of their own, so the
        # request's rollback cannot erase them.
        if isinstance(self.pipeline.recorder, NullRecorder):
            return
        parts = [p for p in request.path.split("/") if p]
        rtype = parts[0] if parts and parts[0] in R4_RESOURCE_TYPES else None
        rid = parts[1] if len(parts) > 1 and not parts[1].startswith(("_", "$")) else None
        # A refusal (401/403) is a security event: admins reviewing security see it.
        event = AccessEvent(interaction_of(request.method, parts), rtype, rid, status=status,
                            query="&".join(f"{k}={v}" for k, v in request.query) or None,
                            detail={"reason": reason[:500]},
                            category="security" if status in (401, 403) else "rest")
        try:
            with unit_of_work(self.engine, write=True) as session:
                self.pipeline.recorder.record(session, ctx, event)
        except Exception:  # the response is already a failure; the log must say why
            log.exception("could not audit a failed request %s", ctx.request_id)

    # -- dispatch -------------------------------------------------------------------------

    def _dispatch(self, ex: Exchange) -> FhirResponse:
        request = ex.request
        parts = [p for p in request.path.split("/") if p]
        method = "GET" if request.method == "HEAD" else request.method
        if not parts:
            return self._pick(method, {
                "POST": lambda: process_bundle(ex),
                "GET": lambda: interactions.search(ex, None, ex.search_params()),
            })
        head = parts[0]
        if head == "metadata" and len(parts) == 1:
            return self._pick(method, {"GET": lambda: capability_statement(ex, self.operations)})
        if head == "_history" and len(parts) == 1:
            return self._pick(method, {"GET": lambda: interactions.history(ex, None, None)})
        if head.startswith("$") and len(parts) == 1:
            return self._operation(ex, method, head[1:], "system", None, None)
        if head not in R4_RESOURCE_TYPES:
            raise NotFound(f"Unknown resource type or path: {head!r}", code="not-supported")
        return self._typed(ex, method, head, parts[1:])

    def _typed(self, ex: Exchange, method: str, rtype: str, rest: list[str]) -> FhirResponse:
        if rtype == "AuditEvent":
            trail = self._audit_trail(ex, method, rest)
            if trail is not None:
                return trail
        writable = rtype not in READ_ONLY_TYPES
        if not rest:
            routes: dict[str, _Route] = {
                "GET": lambda: interactions.search(ex, rtype, ex.search_params()),
            }
            if writable:
                routes["POST"] = lambda: interactions.create(ex, rtype)
                routes["PUT"] = lambda: interactions.conditional_update(ex, rtype)
                routes["DELETE"] = lambda: interactions.conditional_delete(ex, rtype)
            return self._pick(method, routes)
        first = rest[0]
        if first == "_search" and len(rest) == 1:
            return self._pick(method, {
                "POST": lambda: interactions.search_post(ex, rtype),
                "GET": lambda: interactions.search(ex, rtype, ex.search_params()),
            })
        if first == "_history" and len(rest) == 1:
            return self._pick(method, {"GET": lambda: interactions.history(ex, rtype, None)})
        if first.startswith("$") and len(rest) == 1:
            return self._operation(ex, method, first[1:], "type", rtype, None)
        rid = first
        if len(rest) == 1:
            routes = {"GET": lambda: interactions.read(ex, rtype, rid)}
            if writable:
                routes["PUT"] = lambda: interactions.update(ex, rtype, rid)
                routes["DELETE"] = lambda: interactions.delete(ex, rtype, rid)
            return self._pick(method, routes)
        if rest[1] == "_history" and len(rest) == 2:
            return self._pick(method, {"GET": lambda: interactions.history(ex, rtype, rid)})
        if rest[1] == "_history" and len(rest) == 3:
            return self._pick(method, {"GET": lambda: interactions.vread(ex, rtype, rid, rest[2])})
        if rest[1].startswith("$") and len(rest) == 2:
            return self._operation(ex, method, rest[1][1:], "instance", rtype, rid)
        raise NotFound(f"No such path: {ex.request.path!r}", code="not-supported")

    def _audit_trail(self, ex: Exchange, method: str, rest: list[str]) -> FhirResponse | None:
        # AuditEvent is answered from the audit trail, not the resource store; read-only.
        if not rest or rest == ["_search"]:
            routes: dict[str, _Route] = {
                "GET": lambda: audit_search.search(ex, ex.search_params())}
            if rest:
                routes["POST"] = lambda: audit_search.search_post(ex)
            return self._pick(method, routes)
        rid = rest[0]
        if len(rest) == 1 and not rid.startswith(("_", "$")):
            return self._pick(method, {"GET": lambda: audit_search.read(ex, rid)})
        if len(rest) == 3 and rest[1] == "_history":
            return self._pick(method, {"GET": lambda: audit_search.vread(ex, rid, rest[2])})
        return None

    def _operation(
        self, ex: Exchange, method: str, name: str, level: str, rtype: str | None, rid: str | None
    ) -> FhirResponse:
        op = self.operations.find(name, level, rtype)
        if op is None:
            if self.operations.known(name):
                raise BadRequest(f"${name} is not available at the {level} level"
                                 + (f" for {rtype}" if rtype else ""), code="not-supported")
            raise NotFound(f"Unknown operation ${name}", code="not-supported")
        if method not in op.methods:
            raise MethodNotAllowed(f"${name} does not accept {method}",
                                   headers={"Allow": ", ".join(op.methods)})
        return op.handler(ex, rtype, rid)

    @staticmethod
    def _pick(method: str, routes: dict[str, _Route]) -> FhirResponse:
        route = routes.get(method)
        if route is None:
            allowed = ", ".join(sorted(routes))
            raise MethodNotAllowed(f"{method} is not allowed here (allowed: {allowed})",
                                   headers={"Allow": allowed})
        return route()
