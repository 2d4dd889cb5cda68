"""The ledger's "readily retrievable" reports, as flat rows (the API renders CSV or JSON).

- dispensing log: every administration and waste (and their corrections) in a period, with
  the patient's name and address read from the Patient resource and who administered;
- running balances: each lot's entries in order with the balance after each;
- inventory: each lot's current balance with its totals by kind;
- discrepancies: count lines whose counted quantity differed from the books.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ehr.clinical.ledger import repository
from ehr.clinical.ledger.journal import detail_of
from ehr.clinical.ledger.locations import address_text
from ehr.clinical.ledger.quantities import ZERO, ml_of
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.repository import EntryFilter
from ehr.clinical.ledger.tables import EntryRow, LocationRow, LotRow
from ehr.errors import BadRequest, NotFound
from ehr.instants import from_datetime, instant
from ehr.store.repository import get_current

DISPENSING_KINDS = ("administration", "waste", "correction")


@dataclass
class Report:
    name: str
    fields: tuple[str, ...]
    rows: list[dict[str, Any]]
    patients: set[str] = field(default_factory=set)


def period(start: str | None, end: str | None, zone: dt.tzinfo) -> tuple[int | None, int | None]:
    """``from``/``to`` as a half-open microsecond range: dates cover whole days (in the
    protocol's time zone), date-times are exact (``to`` inclusive)."""

    def bound(text: str, what: str, upper: bool) -> int:
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if upper else 0)
                return from_datetime(dt.datetime.combine(day, dt.time(), zone))
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadRequest(f"{what} {text!r}: expected YYYY-MM-DD or an ISO date-time with "
                             "a time zone", expression=(what,)) from exc
        if moment.tzinfo is None:
            raise BadRequest(f"{what} {text!r} needs a time zone", expression=(what,))
        return from_datetime(moment) + (1 if upper else 0)

    low = bound(start, "from", False) if start else None
    high = bound(end, "to", True) if end else None
    if low is not None and high is not None and high <= low:
        raise BadRequest("'to' is before 'from'", expression=("to",))
    return low, high


def _location_pk(session: Session, location_id: str | None) -> int | None:
    if location_id is None:
        return None
    row = repository.location(session, location_id)
    if row is None:
        raise NotFound(f"Location/{location_id} is not a registered location")
    return row.id


class _Patients:
    """Name and address of each referenced Patient, read once per report."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[str, tuple[str, str]] = {}

    def __call__(self, ref: str | None) -> tuple[str, str]:
        if not ref or not ref.startswith("Patient/"):
            return "", ""
        if ref not in self.cache:
            stored = get_current(self.session, "Patient", ref.split("/", 1)[1])
            resource = json.loads(stored.content) if stored and stored.content else {}
            self.cache[ref] = (_name(resource), address_text(resource))
        return self.cache[ref]


def _name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            if isinstance(name.get("text"), str):
                return str(name["text"])
            given = " ".join(str(g) for g in name.get("given") or [])
            return f"{given} {name.get('family') or ''}".strip()
    return ""


def entry_row(entry: EntryRow, location: LocationRow, lot: LotRow) -> dict[str, Any]:
    """One entry as the API shows it (quantities as exact decimal strings)."""
    witnesses = [{"id": i, "display": d} for i, d in
                 ((entry.witness_id, entry.witness_display),
                  (entry.witness2_id, entry.witness2_display)) if i]
    return {
        "id": entry.id, "kind": entry.kind, "location_id": location.location_id,
        "dea_number": location.dea_number, "lot_number": lot.lot_number, "drug": lot.drug,
        "ndc": lot.ndc, "strength": lot.strength, "mg": qty(entry.mg), "ml": qty(entry.ml),
        "balance_mg": qty(entry.balance_mg), "balance_ml": qty(entry.balance_ml),
        "occurred": instant(entry.occurred_us), "recorded": instant(entry.recorded_us),
        "actor": entry.actor_id, "actor_display": entry.actor_display,
        "patient": entry.patient, "administration": entry.administration,
        "witnesses": witnesses, "corrects": entry.corrects_id, "reason": entry.reason,
        "detail": detail_of(entry),
    }


def _context(session: Session, entries: Iterable[EntryRow]
             ) -> tuple[dict[int, LocationRow], dict[int, LotRow]]:
    rows = list(entries)
    return (repository.locations_by_pk(session, [e.location_pk for e in rows]),
            repository.lots_by_pk(session, [e.lot_pk for e in rows]))


DISPENSING_FIELDS = ("entry", "occurred", "kind", "location_id", "dea_number", "drug", "ndc",
                     "strength", "lot_number", "mg", "ml", "drawn_mg", "given_mg", "wasted_mg",
                     "patient", "patient_name", "patient_address", "administered_by",
                     "administered_by_id", "witness", "administration", "corrects", "reason")


def dispensing_log(session: Session, location_id: str | None, start_us: int | None,
                   end_us: int | None) -> Report:
    flt = EntryFilter(location_pk=_location_pk(session, location_id), kinds=DISPENSING_KINDS,
                      start_us=start_us, end_us=end_us)
    found = repository.entries(session, flt)
    found = [e for e in found if e.kind != "correction"
             or detail_of(e).get("corrected_kind") in DISPENSING_KINDS]
    places, lots = _context(session, found)
    patient = _Patients(session)
    report = Report("dispensing", DISPENSING_FIELDS, [])
    for e in found:
        row = entry_row(e, places[e.location_pk], lots[e.lot_pk])
        name, address = patient(e.patient)
        if e.patient:
            report.patients.add(e.patient.split("/", 1)[1])
        detail = row["detail"]
        report.rows.append({
            "entry": e.id, "occurred": row["occurred"], "kind": e.kind,
            "location_id": row["location_id"], "dea_number": row["dea_number"],
            "drug": row["drug"], "ndc": row["ndc"], "strength": row["strength"],
            "lot_number": row["lot_number"], "mg": row["mg"], "ml": row["ml"],
            "drawn_mg": detail.get("drawn_mg"), "given_mg": detail.get("given_mg"),
            "wasted_mg": detail.get("wasted_mg"), "patient": e.patient,
            "patient_name": name, "patient_address": address,
            "administered_by": e.actor_display, "administered_by_id": e.actor_id,
            "witness": e.witness_display, "administration": e.administration,
            "corrects": e.corrects_id, "reason": e.reason})
    return report


BALANCE_FIELDS = ("location_id", "lot_number", "entry", "occurred", "recorded", "kind", "mg",
                  "ml", "balance_mg", "balance_ml", "actor", "corrects")


def running_balances(session: Session, location_id: str | None,
                     lot_number: str | None) -> Report:
    report = Report("balances", BALANCE_FIELDS, [])
    for location, lot in _lots(session, location_id, lot_number):
        assert lot.id is not None
        for e in repository.entries_of_lot(session, lot.id):
            report.rows.append({
                "location_id": location.location_id, "lot_number": lot.lot_number,
                "entry": e.id, "occurred": instant(e.occurred_us),
                "recorded": instant(e.recorded_us), "kind": e.kind, "mg": qty(e.mg),
                "ml": qty(e.ml), "balance_mg": qty(e.balance_mg),
                "balance_ml": qty(e.balance_ml), "actor": e.actor_id,
                "corrects": e.corrects_id})
    return report


def _lots(session: Session, location_id: str | None,
          lot_number: str | None) -> list[tuple[LocationRow, LotRow]]:
    places = ([repository.location(session, location_id)] if location_id
              else repository.locations(session))
    if location_id and places[0] is None:
        raise NotFound(f"Location/{location_id} is not a registered location")
    out = []
    for place in places:
        assert place is not None and place.id is not None
        out += [(place, lot) for lot, _ in repository.lots(session, place.id)
                if lot_number is None or lot.lot_number == lot_number]
    if lot_number is not None and not out:
        raise NotFound(f"lot {lot_number!r} is not stocked at the location(s) asked for")
    return out


INVENTORY_FIELDS = ("location_id", "location_name", "dea_number", "drug", "ndc", "form",
                    "strength", "lot_number", "expiry", "expired", "balance_mg", "balance_ml",
                    "received_mg", "administered_mg", "wasted_mg", "destroyed_mg", "lost_mg",
                    "corrections_mg")


def inventory(session: Session, location_id: str | None, today: dt.date) -> Report:
    report = Report("inventory", INVENTORY_FIELDS, [])
    for location, lot in _lots(session, location_id, None):
        assert lot.id is not None
        totals = repository.totals_by_kind(session, lot.id)
        balance = sum(totals.values(), ZERO)

        def total(kind: str, sign: int = -1, totals: dict[str, Decimal] = totals) -> str:
            return qty(sign * totals.get(kind, ZERO))

        report.rows.append({
            "location_id": location.location_id, "location_name": location.name,
            "dea_number": location.dea_number, "drug": lot.drug, "ndc": lot.ndc,
            "form": lot.form, "strength": lot.strength, "lot_number": lot.lot_number,
            "expiry": lot.expiry.isoformat(), "expired": lot.expiry < today,
            "balance_mg": qty(balance), "balance_ml": qty(ml_of(balance, lot.concentration)),
            "received_mg": total("receipt", 1), "administered_mg": total("administration"),
            "wasted_mg": total("waste"), "destroyed_mg": total("destruction"),
            "lost_mg": total("loss"), "corrections_mg": total("correction", 1)})
    return report


DISCREPANCY_FIELDS = ("count", "counted", "count_kind", "timing", "location_id", "lot_number",
                      "method", "counted_mg", "counted_ml", "expected_mg", "expected_ml",
                      "variance_mg", "variance_ml", "counted_by", "flag")


def discrepancies(session: Session, location_id: str | None, start_us: int | None,
                  end_us: int | None) -> Report:
    report = Report("discrepancies", DISCREPANCY_FIELDS, [])
    pk = _location_pk(session, location_id)
    for count in repository.counts(session, pk, variance_only=True, start_us=start_us,
                                   end_us=end_us):
        assert count.id is not None
        place = repository.location_by_pk(session, count.location_pk)
        lines = repository.count_lines(session, count.id)
        lots = repository.lots_by_pk(session, [line.lot_pk for line in lines])
        for line in lines:
            if line.variance_mg == 0:
                continue
            report.rows.append({
                "count": count.id, "counted": instant(count.counted_us),
                "count_kind": count.kind, "timing": count.timing,
                "location_id": place.location_id if place else None,
                "lot_number": lots[line.lot_pk].lot_number, "method": line.method,
                "counted_mg": qty(line.counted_mg), "counted_ml": qty(line.counted_ml),
                "expected_mg": qty(line.expected_mg), "expected_ml": qty(line.expected_ml),
                "variance_mg": qty(line.variance_mg), "variance_ml": qty(line.variance_ml),
                "counted_by": count.actor_display, "flag": count.flag})
    return report

