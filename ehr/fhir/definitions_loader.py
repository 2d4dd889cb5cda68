"""Publish the definition resources the service ships (``ehr db upgrade``).

Each resource is written under its stable id through the Writer, so it is validated and
audited like any write; a resource whose content has not changed is left alone, so running
the upgrade again adds no versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ehr.clinical.definitions import shipped_definitions
from ehr.context import SYSTEM, RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.fhir import canonical_json
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer
from ehr.store.repository import StoredResource, get_current


@dataclass(frozen=True)
class Published:
    written: int
    unchanged: int


def publish_definitions(engine: Engine, pipeline: Pipeline,
                        resources: list[dict[str, Any]] | None = None) -> Published:
    """Create or update every shipped definition whose content differs from the stored one."""
    ctx = RequestContext(actor=SYSTEM, user_agent="ehr db upgrade")
    written = unchanged = 0
    with bind_context(ctx), unit_of_work(engine) as session:
        writer = Writer(pipeline, session, ctx)
        for resource in shipped_definitions() if resources is None else resources:
            rtype, rid = resource["resourceType"], resource["id"]
            if _same(get_current(session, rtype, rid), resource):
                unchanged += 1
                continue
            writer.update(rtype, rid, resource)
            written += 1
    return Published(written, unchanged)


def _same(stored: StoredResource | None, resource: dict[str, Any]) -> bool:
    if stored is None or stored.deleted or not stored.content:
        return False
    current = canonical_json.loads(stored.content)
    current.pop("meta", None)
    wanted = canonical_json.loads(canonical_json.dumps(resource))
    wanted.pop("meta", None)
    return bool(current == wanted)
