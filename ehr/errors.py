"""The one error type tree. Every refusal carries OperationOutcome issues and an HTTP status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue, independent of any FHIR model library."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def outcome_of(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


class EhrError(Exception):
    """Base of every expected failure; one handler renders it as an OperationOutcome."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "exception"

    def __init__(
        self,
        diagnostics: str = "",
        *,
        code: str | None = None,
        expression: Iterable[str] = (),
        issues: Iterable[Issue] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.issues = list(issues)
        if not self.issues:
            self.issues = [
                Issue(code or self.default_code, diagnostics or type(self).__name__, "error",
                      tuple(expression))
            ]
        self.diagnostics = diagnostics or self.issues[0].diagnostics
        self.headers = dict(headers or {})
        super().__init__(self.diagnostics)

    def outcome(self) -> dict[str, Any]:
        return outcome_of(self.issues)


class BadRequest(EhrError):
    status = 400
    default_code = "invalid"


class Unauthorized(EhrError):
    status = 401
    default_code = "login"


class Forbidden(EhrError):
    status = 403
    default_code = "forbidden"


class NotFound(EhrError):
    status = 404
    default_code = "not-found"


class MethodNotAllowed(EhrError):
    status = 405
    default_code = "not-supported"


class NotAcceptable(EhrError):
    status = 406
    default_code = "not-supported"


class Conflict(EhrError):
    status = 409
    default_code = "conflict"


class Gone(EhrError):
    status = 410
    default_code = "deleted"


class PreconditionFailed(EhrError):
    status = 412
    default_code = "conflict"


class PayloadTooLarge(EhrError):
    status = 413
    default_code = "too-costly"


class UnsupportedMediaType(EhrError):
    status = 415
    default_code = "not-supported"


class Unprocessable(EhrError):
    status = 422
    default_code = "invariant"


class ServiceUnavailable(EhrError):
    status = 503
    default_code = "transient"
