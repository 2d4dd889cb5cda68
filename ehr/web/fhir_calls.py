"""In-process FHIR calls made on behalf of the signed-in user.

A page asks the FHIR router, with the user's own request context, for what it shows; the
router applies the same access policy and writes the same audit records as for an API client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ehr.context import RequestContext
from ehr.fhir.http import FhirRequest
from ehr.fhir.router import FhirRouter


@dataclass(frozen=True)
class FhirResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.status < 400

    def problems(self) -> list[str]:
        """Plain-words issues of an OperationOutcome (errors and warnings)."""
        if self.body.get("resourceType") != "OperationOutcome":
            return []
        return [str(i.get("diagnostics") or i.get("code") or "")
                for i in self.body.get("issue") or []
                if i.get("severity") in ("error", "fatal", "warning")]

    def issues(self) -> list[dict[str, Any]]:
        issues = self.body.get("issue") if self.body.get("resourceType") == "OperationOutcome" \
            else None
        return [i for i in issues or [] if isinstance(i, dict)]

    def entries(self) -> list[dict[str, Any]]:
        """The resources of a searchset (matches and includes)."""
        return [e["resource"] for e in self.body.get("entry") or []
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


class FhirCalls:
    def __init__(self, router: FhirRouter, ctx: RequestContext) -> None:
        self.router = router
        self.ctx = ctx

    def call(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
             body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> FhirResult:
        request = FhirRequest(
            method=method, path=path.lstrip("/"), query=list(query or []),
            headers={"content-type": "application/fhir+json",
                     **{k.lower(): v for k, v in (headers or {}).items()}},
            body=json.dumps(body).encode() if body is not None else b"",
            base_url=self.ctx.base_url)
        response = self.router.handle(request, self.ctx)
        parsed: Any = {}
        if response.body and "json" in response.content_type:
            try:
                parsed = json.loads(response.body)
            except ValueError:
                parsed = {}
        return FhirResult(response.status, parsed if isinstance(parsed, dict) else {},
                          dict(response.headers))

    def get(self, path: str, **params: str) -> FhirResult:
        return self.call("GET", path, [(k.replace("__", ":").replace("_dot_", "."), v)
                                      for k, v in params.items() if v != ""])

    def search(self, path: str, query: list[tuple[str, str]]) -> FhirResult:
        return self.call("GET", path, query)

    def post(self, path: str, body: dict[str, Any],
             headers: dict[str, str] | None = None) -> FhirResult:
        return self.call("POST", path, body=body, headers=headers)

    def put(self, path: str, body: dict[str, Any],
            headers: dict[str, str] | None = None) -> FhirResult:
        return self.call("PUT", path, body=body, headers=headers)
