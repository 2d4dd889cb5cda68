"""The CapabilityStatement, generated from what the router, search and operations implement."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ehr import __version__
from ehr.fhir import canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.fhir.search import search_params_for

if TYPE_CHECKING:
    from ehr.fhir.interactions import Exchange
    from ehr.fhir.operations import OperationRegistry

# Types that are messages or operation payloads, not stored resources.
NOT_STORED = frozenset({"Parameters", "OperationOutcome"})
READ_ONLY = frozenset({"AuditEvent"})
_WRITE = ("create", "update", "delete")
_READ = ("read", "vread", "history-instance", "history-type", "search-type")
_COMMON_PARAMS = (
    ("_id", "token", "Logical id of the resource"),
    ("_lastUpdated", "date", "When the resource version last changed"),
)


def _resource_entry(rtype: str, operations: OperationRegistry) -> dict[str, Any]:
    interactions = [*_READ, *(() if rtype in READ_ONLY else _WRITE)]
    params = [{"name": n, "type": t, "documentation": d} for n, t, d in _COMMON_PARAMS]
    params += [
        {"name": p.name, "type": p.type, "documentation": p.documentation}
        for p in search_params_for(rtype) if p.name not in ("_id", "_lastUpdated")
    ]
    entry: dict[str, Any] = {
        "type": rtype,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": rtype not in READ_ONLY,
        "conditionalCreate": rtype not in READ_ONLY,
        "conditionalRead": "not-supported",
        "conditionalUpdate": rtype not in READ_ONLY,
        "conditionalDelete": "single" if rtype not in READ_ONLY else "not-supported",
        "referencePolicy": ["literal", "logical"],
        "searchInclude": ["*"],
        "searchRevInclude": ["*"],
        "searchParam": params,
    }
    ops = [
        {"name": op.name, "definition": op.definition or f"urn:ehr:operation:{op.name}",
         **({"documentation": op.documentation} if op.documentation else {})}
        for op in operations.all()
        if ("type" in op.levels or "instance" in op.levels)
        and ("*" in op.types or rtype in op.types)
    ]
    if ops:
        entry["operation"] = ops
    return entry


@lru_cache(maxsize=8)
def _statement(operations_key: int, operations: OperationRegistry) -> dict[str, Any]:
    resources = [
        _resource_entry(t, operations) for t in sorted(R4_RESOURCE_TYPES - NOT_STORED)
    ]
    system_ops = [
        {"name": op.name, "definition": op.definition or f"urn:ehr:operation:{op.name}"}
        for op in operations.all() if "system" in op.levels
    ]
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "FHIR R4 REST API of the ehr record service",
        "resource": resources,
        "interaction": [{"code": "transaction"}, {"code": "batch"},
                        {"code": "history-system"}, {"code": "search-system"}],
    }
    if system_ops:
        rest["operation"] = system_ops
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "publisher": "ehr",
        "kind": "instance",
        "software": {"name": "ehr", "version": __version__},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": [],
        "rest": [rest],
    }


def capability_statement(ex: Exchange, operations: OperationRegistry) -> FhirResponse:
    statement = dict(_statement(id(operations), operations))
    statement["implementation"] = {"description": "ehr FHIR server", "url": ex.base}
    return FhirResponse(200, canonical_json.dumps(statement).encode(),
                        {"Cache-Control": "public, max-age=60"})
