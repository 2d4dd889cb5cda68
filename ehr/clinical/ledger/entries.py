"""Receipts, waste, destruction and corrections: the entries people record by hand.

(Administrations come from charting a dose, ``draws``; theft and loss from ``losses``.)
Each function locks the lot's balance row before it reads the balance, and refuses with every
problem it found (422) rather than the first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import Session

from ehr.auth.identifiers import normalise_dea
from ehr.clinical.ledger import locations, repository, witnesses
from ehr.clinical.ledger.journal import Posting, post, refuse
from ehr.clinical.ledger.protocol import LedgerProtocol
from ehr.clinical.ledger.quantities import QuantityError, exact, mg_of, ml_of, volume_problem
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.repository import LotState
from ehr.clinical.ledger.tables import EntryRow, LotRow
from ehr.clinical.ledger.witnesses import WitnessCheck, WitnessProof
from ehr.context import RequestContext
from ehr.errors import BadRequest, Conflict, Issue, NotFound, Unprocessable
from ehr.instants import from_datetime, now_us

# "50 mg/mL", "500 mg/10 mL", "100mg / 1 ml"
_STRENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*ml\s*$", re.I)
# NDC in its 10-digit hyphenated layouts (4-4-2, 5-3-2, 5-4-1) or the 11-digit 5-4-2 form.
_NDC = re.compile(r"^(\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1,2})$")
_REFERENCE = re.compile(r"^(Patient|MedicationAdministration)/[A-Za-z0-9\-.]{1,64}$")


def concentration_of(strength: str) -> Decimal:
    """mg per mL from a strength such as ``50 mg/mL`` or ``500 mg/10 mL``."""
    match = _STRENGTH.match(strength)
    if match is None:
        raise BadRequest(f"strength {strength!r}: expected 'N mg/mL' or 'N mg/V mL'",
                         expression=("strength",))
    mg, per = Decimal(match.group(1)), Decimal(match.group(2) or 1)
    if mg <= 0 or per <= 0:
        raise BadRequest(f"strength {strength!r} must be positive", expression=("strength",))
    return exact((mg / per).quantize(Decimal("0.0001")), "concentration", positive=True)


def reference(value: str | None, kind: str, what: str) -> str | None:
    if value is None:
        return None
    if not _REFERENCE.match(value) or not value.startswith(kind + "/"):
        raise BadRequest(f"{what} must be a reference '{kind}/<id>'", expression=(what,))
    return value


def amount(lot: LotRow, mg: Decimal | None, ml: Decimal | None, what: str, *,
           allow_zero: bool = False) -> Decimal:
    """A quantity given in mg, in mL, or both (then they must agree), as mg."""
    try:
        if mg is None and ml is None:
            raise BadRequest(f"{what}: give mg or mL", expression=(what,))
        if mg is None:
            assert ml is not None
            return mg_of(exact(ml, f"{what} mL", positive=not allow_zero), lot.concentration)
        value = exact(mg, f"{what} mg", positive=not allow_zero)
    except QuantityError as exc:
        raise BadRequest(str(exc), expression=(what,)) from exc
    if (wrong := volume_problem(value, ml, lot.concentration)) is not None:
        raise BadRequest(f"{what}: {wrong}", expression=(what,))
    return value


def locked_lot(session: Session, location_id: str, lot_number: str) -> LotState:
    location = locations.require(session, location_id)
    assert location.id is not None
    state = repository.lock_lot(session, location.id, lot_number)
    if state is None:
        raise NotFound(f"lot {lot_number!r} is not stocked at Location/{location_id}")
    return state


def _not_future(at: int, what: str) -> None:
    if at > now_us() + 60_000_000:
        raise refuse(f"{what} is in the future", expression=what)


# -- receipt -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    location_id: str
    lot_number: str
    drug: str
    form: str
    strength: str
    container_ml: Decimal
    containers: int
    expiry: dt.date
    received: dt.date
    supplier_name: str
    supplier_address: str
    supplier_dea: str
    invoice_number: str
    ndc: str | None = None
    rxnorm: str | None = None


def _rule(problem: str, expression: str) -> Issue:
    return Issue("business-rule", problem, "error", (expression,))


def _lot_mismatches(lot: LotRow, new: LotRow) -> list[str]:
    fields = ("drug", "ndc", "form", "concentration", "container_ml", "expiry")
    return [f"lot {lot.lot_number} was received before with {f} {getattr(lot, f)!s}, "
            f"not {getattr(new, f)!s}" for f in fields if getattr(lot, f) != getattr(new, f)]


def record_receipt(session: Session, ctx: RequestContext, protocol: LedgerProtocol,
                   r: Receipt) -> EntryRow:
    location = locations.require(session, r.location_id)
    assert location.id is not None
    if r.ndc is not None and not _NDC.match(r.ndc):
        raise BadRequest(f"NDC {r.ndc!r}: expected a hyphenated 10-digit (4-4-2, 5-3-2, 5-4-1) "
                         "or 11-digit (5-4-2) code", expression=("ndc",))
    supplier_dea = normalise_dea(r.supplier_dea)
    try:
        container_ml = exact(r.container_ml, "container_ml", positive=True)
    except QuantityError as exc:
        raise BadRequest(str(exc), expression=("container_ml",)) from exc
    if r.containers < 1:
        raise BadRequest("containers must be at least 1", expression=("containers",))
    concentration = concentration_of(r.strength)
    problems: list[Issue] = []
    if r.received > dt.datetime.now(protocol.zone).date():
        problems.append(_rule(f"the date received ({r.received}) is in the future", "received"))
    if r.expiry < r.received:
        problems.append(_rule(f"lot {r.lot_number} expired on {r.expiry}, before it was "
                              "received", "expiry"))
    new = LotRow(location_pk=location.id, lot_number=r.lot_number.strip(), drug=r.drug.strip(),
                 rxnorm=r.rxnorm, ndc=r.ndc, form=r.form.strip(), strength=r.strength.strip(),
                 concentration=concentration, container_ml=container_ml, expiry=r.expiry,
                 created_us=now_us())
    if not new.lot_number or not new.drug or not new.form:
        raise BadRequest("lot_number, drug and form must not be empty")
    state = repository.lock_lot(session, location.id, new.lot_number)
    if state is not None:
        problems += [_rule(p, "lot_number") for p in _lot_mismatches(state.lot, new)]
    if problems:
        raise Unprocessable(issues=problems)
    if state is None:
        repository.add_lot(session, new, new.created_us)
        state = repository.lock_lot(session, location.id, new.lot_number)
        assert state is not None
    received_us = from_datetime(dt.datetime.combine(r.received, dt.time(), protocol.zone))
    mg = mg_of(container_ml * r.containers, concentration)
    return post(session, state, Posting(
        kind="receipt", mg=mg, occurred_us=received_us, actor_id=ctx.actor.id,
        actor_display=ctx.actor.display or ctx.actor.id, request_id=ctx.request_id,
        detail={"containers": r.containers, "container_ml": qty(container_ml),
                "received": r.received.isoformat(), "supplier_name": r.supplier_name,
                "supplier_address": r.supplier_address, "supplier_dea": supplier_dea,
                "invoice_number": r.invoice_number}))


# -- waste ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waste:
    location_id: str
    lot_number: str
    drawn_mg: Decimal
    given_mg: Decimal
    wasted_mg: Decimal
    occurred_us: int
    witness: WitnessProof
    administration: str | None = None
    patient: str | None = None
    note: str | None = None


def record_waste(session: Session, ctx: RequestContext, protocol: LedgerProtocol,
                 check: WitnessCheck, w: Waste) -> EntryRow:
    administration = reference(w.administration, "MedicationAdministration", "administration")
    patient = reference(w.patient, "Patient", "patient")
    try:
        drawn = exact(w.drawn_mg, "drawn_mg", positive=True)
        given = exact(w.given_mg, "given_mg")
        wasted = exact(w.wasted_mg, "wasted_mg", positive=True)
    except QuantityError as exc:
        raise BadRequest(str(exc)) from exc
    _not_future(w.occurred_us, "occurred")
    state = locked_lot(session, w.location_id, w.lot_number)
    problems = []
    if drawn != given + wasted:
        problems.append(f"drawn ({qty(drawn)} mg) must equal given ({qty(given)} mg) plus "
                        f"wasted ({qty(wasted)} mg)")
    if administration is not None:
        drawn_for = [e for e in repository.entries(session, repository.EntryFilter(
            lot_pk=state.lot.id, kinds=("administration",))) if e.administration == administration]
        if not drawn_for:
            problems.append(f"{administration} drew nothing from lot {state.lot.lot_number}")
        elif -drawn_for[0].mg != given:
            problems.append(f"{administration} recorded {qty(-drawn_for[0].mg)} mg given, "
                            f"not {qty(given)} mg")
        elif patient is None:
            patient = drawn_for[0].patient
    if problems:
        raise refuse(*problems)
    witness = witnesses.verify(session, check, ctx.actor, [w.witness],
                               roles=protocol.waste_witness_roles, needed=1, what="waste")[0]
    conc = state.lot.concentration
    return post(session, state, Posting(
        kind="waste", mg=-wasted, occurred_us=w.occurred_us, actor_id=ctx.actor.id,
        actor_display=ctx.actor.display or ctx.actor.id, request_id=ctx.request_id,
        patient=patient, administration=administration,
        witnesses=((witness.id, witness.display),),
        detail={"drawn_mg": qty(drawn), "given_mg": qty(given), "wasted_mg": qty(wasted),
                "drawn_ml": qty(ml_of(drawn, conc)), "given_ml": qty(ml_of(given, conc)),
                "wasted_ml": qty(ml_of(wasted, conc)), "note": w.note}))


# -- destruction (DEA Form 41) -------------------------------------------------------------


@dataclass(frozen=True)
class Destruction:
    location_id: str
    lot_number: str
    mg: Decimal | None
    ml: Decimal | None
    destroyed_us: int
    method: str
    place: str | None
    witnesses: Sequence[WitnessProof]
    containers: int | None = None
    reason: str | None = None


def record_destruction(session: Session, ctx: RequestContext, protocol: LedgerProtocol,
                       check: WitnessCheck, d: Destruction) -> EntryRow:
    if not d.method.strip():
        raise BadRequest("method of destruction is required", expression=("method",))
    _not_future(d.destroyed_us, "destroyed")
    state = locked_lot(session, d.location_id, d.lot_number)
    mg = amount(state.lot, d.mg, d.ml, "quantity")
    if mg > state.mg:
        raise refuse(f"lot {d.lot_number} holds {qty(state.mg)} mg: {qty(mg)} mg cannot be "
                     "destroyed")
    found = witnesses.verify(session, check, ctx.actor, d.witnesses,
                             roles=protocol.destruction_witness_roles, needed=2,
                             what="destruction")
    location = repository.location_by_pk(session, state.lot.location_pk)
    assert location is not None
    lot = state.lot
    return post(session, state, Posting(
        kind="destruction", mg=-mg, occurred_us=d.destroyed_us, actor_id=ctx.actor.id,
        actor_display=ctx.actor.display or ctx.actor.id, request_id=ctx.request_id,
        witnesses=tuple((w.id, w.display) for w in found), reason=d.reason,
        detail={"form": "DEA Form 41",
                "item": f"{lot.drug} {lot.form} {lot.strength}",
                "ndc": lot.ndc, "lot": lot.lot_number, "containers": d.containers,
                "quantity_mg": qty(mg), "quantity_ml": qty(ml_of(mg, lot.concentration)),
                "method": d.method.strip(),
                "place": (d.place or f"{location.name}, {location.address}").strip(),
                "registrant_dea": location.dea_number}))


# -- corrections ---------------------------------------------------------------------------


def record_correction(session: Session, ctx: RequestContext, entry_id: int,
                      reason: str) -> EntryRow:
    """A compensating entry that reverses entry ``entry_id`` (record the right one anew)."""
    if not reason.strip():
        raise BadRequest("a correction needs a reason", expression=("reason",))
    original = repository.entry(session, entry_id)
    if original is None:
        raise NotFound(f"ledger entry {entry_id} does not exist")
    if original.kind == "correction":
        raise Conflict(f"entry {entry_id} is itself a correction: record the entry anew instead")
    # Under the lot's lock, so two people correcting the same entry cannot both succeed.
    state = repository.lock_lot_by_pk(session, original.lot_pk)
    assert state is not None
    if repository.correction_of(session, entry_id) is not None:
        raise Conflict(f"entry {entry_id} has already been corrected")
    return post(session, state, Posting(
        kind="correction", mg=-original.mg, occurred_us=now_us(), actor_id=ctx.actor.id,
        actor_display=ctx.actor.display or ctx.actor.id, request_id=ctx.request_id,
        patient=original.patient, administration=original.administration,
        corrects=entry_id, reason=reason.strip(),
        detail={"corrected_kind": original.kind}))
