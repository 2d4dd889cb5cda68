"""Named operations (``$validate``; later ``$everything``, ``$export``, ...) and their registry.

The CapabilityStatement lists exactly what is registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ehr.audit.events import AccessEvent
from ehr.errors import BadRequest, EhrError, Issue
from ehr.fhir import bundles
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.validation import validate_resource

Handler = Callable[[Exchange, str | None, str | None], FhirResponse]


@dataclass(frozen=True)
class Operation:
    name: str  # without the "$"
    handler: Handler
    types: tuple[str, ...] = ("*",)  # "*" = every type
    levels: tuple[str, ...] = ("type",)  # "system" | "type" | "instance"
    methods: tuple[str, ...] = ("POST",)
    writes: bool = False
    definition: str = ""
    documentation: str = ""
    # Also answers text/html (a printable page) when asked with _format=html or Accept.
    html: bool = False


class OperationRegistry:
    def __init__(self) -> None:
        self._ops: dict[str, list[Operation]] = {}

    def register(self, op: Operation) -> None:
        self._ops.setdefault(op.name, []).append(op)

    def find(self, name: str, level: str, rtype: str | None) -> Operation | None:
        for op in self._ops.get(name, []):
            if level in op.levels and (rtype is None or "*" in op.types or rtype in op.types):
                return op
        return None

    def serves_html(self, name: str) -> bool:
        return any(op.html for op in self._ops.get(name, []))

    def known(self, name: str) -> bool:
        return name in self._ops

    def all(self) -> list[Operation]:
        return [op for ops in self._ops.values() for op in ops]


def validate_operation(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    """``$validate``: 200 with an OperationOutcome whether or not the resource is valid."""
    body = ex.json_body()
    resource: Any = body
    if body.get("resourceType") == "Parameters":
        params = body.get("parameter")
        resource = None
        for param in params if isinstance(params, list) else []:
            if isinstance(param, dict) and param.get("name") == "resource":
                resource = param.get("resource")
        if not isinstance(resource, dict):
            raise BadRequest("Parameters must carry a 'resource' parameter",
                             expression=("Parameters.parameter",))
    try:
        issues = validate_resource(resource, expected_type=rtype, expected_id=rid)
    except EhrError as err:
        issues = err.issues
    errors = sum(1 for i in issues if i.severity in ("error", "fatal"))
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:validate", rtype, rid, detail={"errors": errors}))
    if not issues:
        issues = [Issue("informational", "Validation successful: no issues found", "information")]
    return FhirResponse(200, bundles.outcome_bytes(issues))


def default_operations() -> OperationRegistry:
    registry = OperationRegistry()
    registry.register(Operation(
        "validate", validate_operation, levels=("type", "instance"),
        definition="http://hl7.org/fhir/OperationDefinition/Resource-validate",
        documentation="Validate a resource (structure, required bindings, references).",
    ))
    from ehr.fhir.eligibility_operations import register_eligibility_operations

    register_eligibility_operations(registry)
    from ehr.fhir.note_operations import register_note_operations

    register_note_operations(registry)
    from ehr.fhir.scores_operation import register_scores_operation

    register_scores_operation(registry)
    from ehr.fhir.session_operations import register_session_operations

    register_session_operations(registry)
    from ehr.fhir.everything import register_everything_operation

    register_everything_operation(registry)
    from ehr.fhir.bulk_export import register_export_operations

    register_export_operations(registry)
    return registry
