"""What the ledger pages show, read from the ledger in the request's audited transaction.

Each function is the ``work`` of one ``LedgerOperations.run``: it returns a ``Done`` whose
audit facts name the patients shown. Quantities are the ledger's exact decimal strings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlmodel import Session

from ehr.clinical.ledger import permissions, repository
from ehr.clinical.ledger.losses import task_status
from ehr.clinical.ledger.operations import Done
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.reports import entry_row
from ehr.clinical.ledger.repository import EntryFilter
from ehr.clinical.ledger.tables import CountRow, LocationRow
from ehr.context import RequestContext
from ehr.instants import now_us
from ehr.store.repository import get_current

RECENT = 100
T = TypeVar("T")
Work = Callable[[Session, RequestContext], Done[T]]


@dataclass
class Place:
    location_id: str
    name: str
    dea_number: str
    lots: list[dict[str, Any]] = field(default_factory=list)
    last_count: dict[str, Any] | None = None


def place_options(session: Session) -> list[dict[str, str]]:
    return [{"id": r.location_id, "name": r.name} for r in repository.locations(session)]


def lot_options(session: Session, location_id: str | None) -> list[str]:
    found = repository.location(session, location_id) if location_id else None
    if found is None or found.id is None:
        return []
    return [lot.lot_number for lot, _ in repository.lots(session, found.id)]


def _lots(session: Session, place: LocationRow, today: dt.date) -> list[dict[str, Any]]:
    assert place.id is not None
    return [{"lot_number": lot.lot_number, "drug": lot.drug, "ndc": lot.ndc,
             "form": lot.form, "strength": lot.strength,
             "concentration": qty(lot.concentration), "expiry": lot.expiry.isoformat(),
             "expired": lot.expiry < today, "balance_mg": qty(bal.mg),
             "balance_ml": qty(bal.ml)}
            for lot, bal in repository.lots(session, place.id)]


def count_view(session: Session, row: CountRow) -> dict[str, Any]:
    assert row.id is not None
    lines = repository.count_lines(session, row.id)
    lots = repository.lots_by_pk(session, [x.lot_pk for x in lines])
    place = repository.location_by_pk(session, row.location_pk)
    return {"id": row.id, "location_id": place.location_id if place else "",
            "kind": row.kind, "timing": row.timing, "counted_us": row.counted_us,
            "by": row.actor_display, "variance": row.variance, "flag": row.flag,
            "note": row.note,
            "lines": [{"lot_number": lots[x.lot_pk].lot_number, "method": x.method,
                       "counted_mg": qty(x.counted_mg), "counted_ml": qty(x.counted_ml),
                       "expected_mg": qty(x.expected_mg), "expected_ml": qty(x.expected_ml),
                       "variance_mg": qty(x.variance_mg), "variance_ml": qty(x.variance_ml),
                       "differs": x.variance_mg != 0} for x in lines]}


def _flag_open(session: Session, ref: str | None) -> bool:
    if not ref or "/" not in ref:
        return False
    stored = get_current(session, "Flag", ref.split("/", 1)[1])
    if stored is None or not stored.content:
        return False
    return bool(json.loads(stored.content).get("status") == "active")


def overview(today: dt.date) -> Work[dict[str, Any]]:
    """Balances per lot and location, last count per location; open discrepancies (counts
    whose variance Flag is still active) and theft/loss tasks for those who may read them."""

    def work(session: Session, ctx: RequestContext) -> Done[dict[str, Any]]:
        now = now_us()
        places = []
        for row in repository.locations(session):
            assert row.id is not None
            place = Place(row.location_id, row.name, row.dea_number, _lots(session, row, today))
            found = repository.counts(session, row.id, variance_only=False)
            if found:
                place.last_count = count_view(session, found[-1])
            places.append(place)
        out: dict[str, Any] = {"places": places, "tasks": None, "discrepancies": None,
                               "now_us": now}
        if permissions.permitted(ctx.actor, "task-read"):
            out["tasks"] = [{
                "id": t.task.id, "kind": t.task.kind, "description": t.task.description,
                "due_us": t.task.due_us, "status": task_status(t, now)}
                for t in repository.tasks(session, open_only=True)]
        if permissions.permitted(ctx.actor, "report"):
            out["discrepancies"] = [
                count_view(session, c) for c in repository.counts(session, None,
                                                                   variance_only=True)
                if _flag_open(session, c.flag)]
        return Done(out, detail={"page": "overview", "locations": len(places)})

    return work


def entries_of(kind: str) -> Work[list[dict[str, Any]]]:
    """The newest entries of one kind (receipts, waste) as rows; waste names patients."""

    def work(session: Session, ctx: RequestContext) -> Done[list[dict[str, Any]]]:
        found = repository.entries(session, EntryFilter(kinds=(kind,)))[-RECENT:][::-1]
        places = repository.locations_by_pk(session, [e.location_pk for e in found])
        lots = repository.lots_by_pk(session, [e.lot_pk for e in found])
        rows = [entry_row(e, places[e.location_pk], lots[e.lot_pk]) for e in found]
        patients = tuple(dict.fromkeys(r["patient"].split("/", 1)[1] for r in rows
                                       if r["patient"]))
        return Done(rows, None, patients, {"page": kind, "rows": len(rows)})

    return work


def recent_counts(session: Session, ctx: RequestContext) -> Done[list[dict[str, Any]]]:
    found = repository.counts(session, None, variance_only=False)[-20:][::-1]
    return Done([count_view(session, c) for c in found], detail={"page": "counts"})
