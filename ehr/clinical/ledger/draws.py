"""Drawing a dose from a lot: the ledger's side of charting a MedicationAdministration.

The dosing rule calls :func:`draw_problems` (which locks the lot's balance row) and, when it
returned nothing and every other gate passed, :func:`record_draw`, both in the write's own
transaction. The lock is held until that transaction ends, so of two concurrent draws the
second sees the first one's balance: a lot can never be overdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import Session

from ehr.clinical.ledger import repository
from ehr.clinical.ledger.journal import Posting, post, refuse
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.quantities import volume_problem
from ehr.context import RequestContext
from ehr.instants import to_datetime


@dataclass(frozen=True)
class DrawRequest:
    location_id: str  # FHIR Location id of a registered location
    lot_number: str
    mg: Decimal
    ml: Decimal | None
    administration: str  # "MedicationAdministration/<id>"
    patient: str  # "Patient/<id>"
    performer: str  # actor id of the administering person
    performer_display: str
    occurred_us: int


def draw_location(session: Session, encounter_location: str | None) -> str | None:
    """The Location id a dose is drawn at: the session Encounter's ``location[0].location``
    reference (``Location/<id>`` or a bare id), else the only registered location, else None."""
    if encounter_location:
        return encounter_location.removeprefix("Location/")
    registered = repository.location_ids(session, limit=2)
    return registered[0] if len(registered) == 1 else None


def draw_problems(session: Session, request: DrawRequest) -> list[str]:
    """Everything that stops this draw, in plain words (empty: it may proceed).

    Locks the lot's balance row until the transaction ends; call before :func:`record_draw`.
    """
    location = repository.location(session, request.location_id)
    if location is None:
        return [f"Location/{request.location_id} is not a registered controlled-substance "
                "location"]
    assert location.id is not None
    state = repository.lock_lot(session, location.id, request.lot_number)
    if state is None:
        return [f"lot {request.lot_number!r} is not stocked at Location/{request.location_id}"]
    problems: list[str] = []
    lot = state.lot
    if request.mg <= 0:
        problems.append(f"the dose must be more than 0 mg (got {request.mg} mg)")
    day = to_datetime(request.occurred_us).date()
    if day > lot.expiry:
        problems.append(f"lot {lot.lot_number} expired on {lot.expiry.isoformat()}")
    if (wrong := volume_problem(request.mg, request.ml, lot.concentration)) is not None:
        problems.append(f"lot {lot.lot_number}: {wrong}")
    if request.mg > state.mg:
        problems.append(f"lot {lot.lot_number} holds {qty(state.mg)} mg at "
                        f"Location/{request.location_id}, less than the {qty(request.mg)} mg "
                        "dose")
    return problems


def record_draw(session: Session, ctx: RequestContext, request: DrawRequest) -> None:
    """Append the administration entry and lower the lot's balance by the dose.

    Re-checks under the lock :func:`draw_problems` took, so a caller that skipped the check
    is refused (422) rather than allowed to overdraw.
    """
    problems = draw_problems(session, request)
    if problems:
        raise refuse(*problems)
    location = repository.location(session, request.location_id)
    assert location is not None and location.id is not None
    state = repository.lock_lot(session, location.id, request.lot_number)
    assert state is not None
    post(session, state, Posting(
        kind="administration", mg=-request.mg, occurred_us=request.occurred_us,
        actor_id=request.performer, actor_display=request.performer_display,
        request_id=ctx.request_id, patient=request.patient,
        administration=request.administration,
        detail={"stated_ml": None if request.ml is None else qty(request.ml)}))
