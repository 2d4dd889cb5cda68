"""Registered locations: where controlled substances are stocked, each under a DEA number.

A registration names an existing FHIR ``Location``; its name and address default to that
resource's. DEA numbers are checked for shape and check digit (``ehr.auth.identifiers``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ehr.auth.identifiers import normalise_dea
from ehr.clinical.ledger import repository
from ehr.clinical.ledger.tables import LocationRow
from ehr.context import Actor
from ehr.errors import BadRequest, Conflict, NotFound, Unprocessable
from ehr.instants import now_us
from ehr.store.repository import get_current

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Registration:
    location_id: str
    dea_number: str
    name: str | None = None
    address: str | None = None


def _location_resource(session: Session, location_id: str) -> dict[str, Any]:
    if not _FHIR_ID.match(location_id):
        raise BadRequest(f"invalid Location id {location_id!r}", expression=("location_id",))
    stored = get_current(session, "Location", location_id)
    if stored is None or stored.deleted or not stored.content:
        raise Unprocessable(f"Location/{location_id} does not exist: create the FHIR Location "
                            "first", code="not-found", expression=("location_id",))
    resource = json.loads(stored.content)
    return resource if isinstance(resource, dict) else {}


def address_text(resource: dict[str, Any]) -> str:
    """A resource's Address as one line: its ``text``, else its parts (a Patient has a list
    of addresses: the first home address, else the first)."""
    address = resource.get("address")
    if isinstance(address, list):
        found = [a for a in address if isinstance(a, dict)]
        address = next((a for a in found if a.get("use") == "home"), found[0] if found else None)
    if not isinstance(address, dict):
        return ""
    if isinstance(address.get("text"), str):
        return str(address["text"])
    parts = [*(address.get("line") or []), address.get("city"), address.get("state"),
             address.get("postalCode"), address.get("country")]
    return ", ".join(str(p) for p in parts if p)


def register(session: Session, actor: Actor, reg: Registration) -> LocationRow:
    resource = _location_resource(session, reg.location_id)
    dea = normalise_dea(reg.dea_number)
    if repository.location(session, reg.location_id) is not None:
        raise Conflict(f"Location/{reg.location_id} is already registered")
    name = (reg.name or str(resource.get("name") or "")).strip()
    address = (reg.address or address_text(resource)).strip()
    if not name or not address:
        raise Unprocessable("a registered location needs a name and an address (give them, or "
                            "set them on the FHIR Location)", expression=("name", "address"))
    now = now_us()
    row = LocationRow(location_id=reg.location_id, name=name, address=address, dea_number=dea,
                      registered_us=now, registered_by=actor.id, updated_us=now)
    repository.add(session, row)
    return row


def change(session: Session, location_id: str, *, name: str | None, address: str | None,
           dea_number: str | None) -> tuple[LocationRow, dict[str, Any]]:
    """Update a registration; returns it with the previous values of what changed."""
    row = repository.location(session, location_id)
    if row is None:
        raise NotFound(f"Location/{location_id} is not a registered location")
    values: dict[str, Any] = {}
    if name is not None and name.strip():
        values["name"] = name.strip()
    if address is not None and address.strip():
        values["address"] = address.strip()
    if dea_number is not None:
        values["dea_number"] = normalise_dea(dea_number)
    before = {k: getattr(row, k) for k, v in values.items() if getattr(row, k) != v}
    if before:
        values["updated_us"] = now_us()
        repository.update_location(session, row, values)
    return row, before


def require(session: Session, location_id: str) -> LocationRow:
    row = repository.location(session, location_id)
    if row is None:
        raise NotFound(f"Location/{location_id} is not a registered controlled-substance "
                       "location")
    return row
