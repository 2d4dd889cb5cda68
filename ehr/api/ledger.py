"""``/api/ledger``: the Schedule III controlled-substance ledger over HTTP (docs/ledger.md).

Locations, receipts, witnessed waste, destruction (DEA Form 41), theft/loss with their DEA
tasks, physical counts, corrections and the reports. Who may call what is
``ehr.clinical.ledger.permissions.ROLE_MATRIX``; how a request runs (one audited
transaction) is ``ledger_service``. Errors are JSON ``{"detail", "issues"}`` with 400 (bad
input), 401, 403 (role, or a witness's failed re-authentication), 404, 409 (already
corrected/closed, concurrent change) or 422 (a ledger rule: balance, expiry, witness is the
performer, count of an unknown lot...).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Engine
from sqlmodel import Session

from ehr.api import ledger_reports
from ehr.api.ledger_models import (
    CorrectionIn,
    CountIn,
    CountLineOut,
    CountOut,
    DestructionIn,
    EntryOut,
    ErrorOut,
    LocationChange,
    LocationIn,
    LocationOut,
    LossIn,
    LossOut,
    LotOut,
    ReceiptIn,
    TaskCloseIn,
    TaskClosureOut,
    TaskOut,
    WasteIn,
    WitnessIn,
)
from ehr.api.ledger_service import Authenticator, Done, LedgerService
from ehr.auth.service import AuthService
from ehr.clinical.ledger import counts, entries, locations, losses, repository
from ehr.clinical.ledger.operations import entry_done
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.reports import entry_row
from ehr.clinical.ledger.repository import TaskState
from ehr.clinical.ledger.tables import CountLineRow, CountRow, EntryRow, LocationRow
from ehr.clinical.ledger.witnesses import WitnessProof
from ehr.context import RequestContext
from ehr.errors import NotFound
from ehr.fhir.pipeline import Pipeline
from ehr.instants import from_datetime, instant, now_us

_ERR = {"model": ErrorOut}
ERRORS = {400: {**_ERR, "description": "Malformed or invalid input"},
          401: {**_ERR, "description": "No usable bearer token"},
          403: {**_ERR, "description": "Role not permitted, or a witness's re-authentication "
                                       "failed"},
          404: {**_ERR, "description": "Unknown location, lot, entry or task"},
          409: {**_ERR, "description": "Already corrected or closed; concurrent change"},
          422: {**_ERR, "description": "A ledger rule refused it (every problem listed)"}}

LocationId = Annotated[str, Path(description="FHIR Location id")]


def location_out(row: LocationRow) -> LocationOut:
    return LocationOut(location_id=row.location_id, name=row.name, address=row.address,
                       dea_number=row.dea_number, registered=instant(row.registered_us),
                       registered_by=row.registered_by, updated=instant(row.updated_us))


def entry_out(session: Session, entry: EntryRow) -> EntryOut:
    location = repository.location_by_pk(session, entry.location_pk)
    lot = repository.lot_by_pk(session, entry.lot_pk)
    assert location is not None and lot is not None
    return EntryOut.model_validate(entry_row(entry, location, lot))


def task_out(session: Session, state: TaskState, now: int) -> TaskOut:
    task, closure = state.task, state.closure
    location = repository.location_by_pk(session, task.location_pk)
    assert task.id is not None and location is not None
    return TaskOut(
        id=task.id, kind=task.kind, description=task.description,
        location_id=location.location_id, entry=task.entry_pk, due=instant(task.due_us),
        status=losses.task_status(state, now),
        closure=None if closure is None else TaskClosureOut(
            closed=instant(closure.closed_us), reference=closure.reference, note=closure.note,
            by=closure.actor_id))


def count_out(session: Session, row: CountRow, lines: list[CountLineRow]) -> CountOut:
    lots = repository.lots_by_pk(session, [line.lot_pk for line in lines])
    location = repository.location_by_pk(session, row.location_pk)
    assert row.id is not None and location is not None
    return CountOut(
        id=row.id, location_id=location.location_id, kind=row.kind, timing=row.timing,
        counted=instant(row.counted_us), variance=row.variance, flag=row.flag,
        lines=[CountLineOut(
            lot_number=lots[x.lot_pk].lot_number, method=x.method, containers=x.containers,
            counted_mg=qty(x.counted_mg), counted_ml=qty(x.counted_ml),
            expected_mg=qty(x.expected_mg), expected_ml=qty(x.expected_ml),
            variance_mg=qty(x.variance_mg), variance_ml=qty(x.variance_ml)) for x in lines])


def _proof(w: WitnessIn) -> WitnessProof:
    return WitnessProof(w.username, w.assertion)


def _entry_done(session: Session, entry: EntryRow, location_id: str) -> Done[EntryOut]:
    return entry_done(entry, entry_out(session, entry), location_id)


def build_ledger_router(engine: Engine, pipeline: Pipeline, auth: AuthService,
                        authenticate: Authenticator | None) -> APIRouter:
    """``authenticate`` turns the Authorization header into an actor (None: no access
    control, the service itself acts)."""
    svc = LedgerService(engine, pipeline, auth, authenticate)
    router = APIRouter(prefix="/api/ledger", tags=["ledger"], responses=ERRORS)  # type: ignore[arg-type]

    # -- locations -------------------------------------------------------------------------

    @router.post("/locations", status_code=201, response_model=LocationOut,
                 summary="Register a location (admin, compliance)")
    def register(request: Request, body: LocationIn) -> LocationOut:
        def work(session: Session, ctx: RequestContext) -> Done[LocationOut]:
            row = locations.register(session, ctx.actor, locations.Registration(
                body.location_id, body.dea_number, body.name, body.address))
            return Done(location_out(row), row.location_id, detail={"dea": row.dea_number})
        return svc.run(request, "location-write", work)

    @router.get("/locations", response_model=list[LocationOut],
                summary="Registered locations")
    def list_locations(request: Request) -> list[LocationOut]:
        return svc.run(request, "location-read", lambda session, ctx: Done(
            [location_out(r) for r in repository.locations(session)]))

    @router.get("/locations/{location_id}", response_model=LocationOut,
                summary="One registered location")
    def get_location(request: Request, location_id: LocationId) -> LocationOut:
        return svc.run(request, "location-read", lambda session, ctx: Done(
            location_out(locations.require(session, location_id)), location_id))

    @router.put("/locations/{location_id}", response_model=LocationOut,
                summary="Change a registration's name, address or DEA number")
    def change_location(request: Request, location_id: LocationId,
                        body: LocationChange) -> LocationOut:
        def work(session: Session, ctx: RequestContext) -> Done[LocationOut]:
            row, before = locations.change(session, location_id, name=body.name,
                                           address=body.address, dea_number=body.dea_number)
            return Done(location_out(row), location_id, detail={"previous": before})
        return svc.run(request, "location-write", work)

    @router.get("/locations/{location_id}/lots", response_model=list[LotOut],
                summary="Lots stocked at a location with their balances")
    def list_lots(request: Request, location_id: LocationId) -> list[LotOut]:
        def work(session: Session, ctx: RequestContext) -> Done[list[LotOut]]:
            place = locations.require(session, location_id)
            assert place.id is not None
            return Done([LotOut(
                lot_number=lot.lot_number, drug=lot.drug, ndc=lot.ndc, rxnorm=lot.rxnorm,
                form=lot.form, strength=lot.strength,
                concentration_mg_per_ml=qty(lot.concentration),
                container_ml=qty(lot.container_ml), expiry=lot.expiry,
                balance_mg=qty(bal.mg), balance_ml=qty(bal.ml))
                for lot, bal in repository.lots(session, place.id)], location_id)
        return svc.run(request, "lot-read", work)

    # -- entries ---------------------------------------------------------------------------

    @router.post("/receipts", status_code=201, response_model=EntryOut,
                 summary="Record stock received (physician, nurse)")
    def receipt(request: Request, body: ReceiptIn) -> EntryOut:
        def work(session: Session, ctx: RequestContext) -> Done[EntryOut]:
            entry = entries.record_receipt(session, ctx, svc.protocol, entries.Receipt(
                location_id=body.location_id, lot_number=body.lot_number, drug=body.drug,
                form=body.form, strength=body.strength, container_ml=body.container_ml,
                containers=body.containers, expiry=body.expiry, received=body.received,
                supplier_name=body.supplier.name, supplier_address=body.supplier.address,
                supplier_dea=body.supplier.dea_number, invoice_number=body.invoice_number,
                ndc=body.ndc, rxnorm=body.rxnorm))
            return _entry_done(session, entry, body.location_id)
        return svc.run(request, "receipt", work)

    @router.post("/waste", status_code=201, response_model=EntryOut,
                 summary="Record witnessed waste of a drawn dose (physician, nurse)",
                 description="The witness re-authenticates at POST /auth/reauth and the "
                             "assertion is sent here; it must be a different active "
                             "physician or nurse.")
    def waste(request: Request, body: WasteIn) -> EntryOut:
        def work(session: Session, ctx: RequestContext) -> Done[EntryOut]:
            occurred = from_datetime(body.occurred) if body.occurred else now_us()
            entry = entries.record_waste(session, ctx, svc.protocol, svc.witnesses,
                                         entries.Waste(
                location_id=body.location_id, lot_number=body.lot_number,
                drawn_mg=body.drawn_mg, given_mg=body.given_mg, wasted_mg=body.wasted_mg,
                occurred_us=occurred, witness=_proof(body.witness),
                administration=body.administration, patient=body.patient, note=body.note))
            return _entry_done(session, entry, body.location_id)
        return svc.run(request, "waste", work)

    @router.post("/destructions", status_code=201, response_model=EntryOut,
                 summary="Record destruction of stock, DEA Form 41 (two witnesses)")
    def destruction(request: Request, body: DestructionIn) -> EntryOut:
        def work(session: Session, ctx: RequestContext) -> Done[EntryOut]:
            when = from_datetime(body.destroyed) if body.destroyed else now_us()
            entry = entries.record_destruction(session, ctx, svc.protocol, svc.witnesses,
                                               entries.Destruction(
                location_id=body.location_id, lot_number=body.lot_number, mg=body.mg,
                ml=body.ml, destroyed_us=when, method=body.method, place=body.place,
                witnesses=[_proof(w) for w in body.witnesses], containers=body.containers,
                reason=body.reason))
            return _entry_done(session, entry, body.location_id)
        return svc.run(request, "destruction", work)

    @router.post("/losses", status_code=201, response_model=LossOut,
                 summary="Report a theft or loss; opens the DEA notice and Form 106 tasks")
    def loss(request: Request, body: LossIn) -> LossOut:
        def work(session: Session, ctx: RequestContext) -> Done[LossOut]:
            entry, tasks = losses.record_loss(session, ctx, svc.protocol, losses.Loss(
                location_id=body.location_id, lot_number=body.lot_number, mg=body.mg,
                ml=body.ml, discovered_us=from_datetime(body.discovered),
                circumstances=body.circumstances, kind=body.kind))
            now = now_us()
            done = _entry_done(session, entry, body.location_id)
            out = LossOut(entry=done.value, tasks=[task_out(session, TaskState(t, None), now)
                                                   for t in tasks])
            return Done(out, body.location_id, detail=done.detail)
        return svc.run(request, "loss", work)

    @router.post("/entries/{entry_id}/corrections", status_code=201, response_model=EntryOut,
                 summary="Correct an entry with a compensating entry (physician, compliance)")
    def correct(request: Request, entry_id: Annotated[int, Path(ge=1)],
                body: CorrectionIn) -> EntryOut:
        def work(session: Session, ctx: RequestContext) -> Done[EntryOut]:
            entry = entries.record_correction(session, ctx, entry_id, body.reason)
            place = repository.location_by_pk(session, entry.location_pk)
            assert place is not None
            return _entry_done(session, entry, place.location_id)
        return svc.run(request, "correction", work)

    @router.get("/entries/{entry_id}", response_model=EntryOut, summary="One ledger entry")
    def get_entry(request: Request, entry_id: Annotated[int, Path(ge=1)]) -> EntryOut:
        def work(session: Session, ctx: RequestContext) -> Done[EntryOut]:
            entry = repository.entry(session, entry_id)
            if entry is None:
                raise NotFound(f"ledger entry {entry_id} does not exist")
            place = repository.location_by_pk(session, entry.location_pk)
            assert place is not None
            return _entry_done(session, entry, place.location_id)
        return svc.run(request, "report", work)

    # -- counts ----------------------------------------------------------------------------

    @router.post("/counts", status_code=201, response_model=CountOut,
                 summary="Record a physical count, reconciled per lot against the books",
                 description="Any variance raises a Flag (category admin) about the "
                             "Location for compliance, stored through the FHIR write path.")
    def count(request: Request, body: CountIn) -> CountOut:
        def work(session: Session, ctx: RequestContext) -> Done[CountOut]:
            row, lines = svc.ops.count(session, ctx, counts.PhysicalCount(
                location_id=body.location_id, kind=body.kind, timing=body.timing,
                counted_us=from_datetime(body.counted) if body.counted else now_us(),
                note=body.note, lines=[counts.CountLine(
                    line.lot_number, line.mg, line.ml, line.method, line.containers)
                    for line in body.lines]))
            return Done(count_out(session, row, lines), body.location_id,
                        detail={"count": row.id, "variance": row.variance, "flag": row.flag})
        return svc.run(request, "count", work)

    # -- tasks -----------------------------------------------------------------------------

    @router.get("/tasks", response_model=list[TaskOut],
                summary="Theft/loss follow-ups: open, overdue, or all")
    def list_tasks(request: Request,
                   status: Annotated[Literal["open", "overdue", "all"],
                                     Query(description="open includes overdue")] = "open",
                   location: Annotated[str | None, Query(description="Location id")] = None,
                   ) -> list[TaskOut]:
        def work(session: Session, ctx: RequestContext) -> Done[list[TaskOut]]:
            pk = locations.require(session, location).id if location else None
            now = now_us()
            found = repository.tasks(session, location_pk=pk, open_only=status != "all",
                                     due_before_us=now if status == "overdue" else None)
            return Done([task_out(session, t, now) for t in found], location)
        return svc.run(request, "task-read", work)

    @router.post("/tasks/{task_id}/close", response_model=TaskOut,
                 summary="Close a task with a reference (physician, compliance)")
    def close(request: Request, task_id: Annotated[int, Path(ge=1)],
              body: TaskCloseIn) -> TaskOut:
        def work(session: Session, ctx: RequestContext) -> Done[TaskOut]:
            state = losses.close_task(session, ctx, task_id, body.reference, body.note)
            out = task_out(session, state, now_us())
            return Done(out, out.location_id, detail={"task": task_id,
                                                      "reference": body.reference})
        return svc.run(request, "task-close", work)

    ledger_reports.add_report_routes(router, svc)
    return router
