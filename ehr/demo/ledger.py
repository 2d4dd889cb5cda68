"""The Schedule III ledger as the staff keep it, through the ledger's own operations (role
check, one transaction, audit record): the registered location, receipts, a witnessed waste
and a physical count that finds a variance (which raises the compliance Flag). The doses
draw their administrations from the ledger themselves, through the dosing gate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import Session

from ehr.clinical.ledger import counts, entries, locations, repository
from ehr.clinical.ledger.operations import Done, LedgerOperations, entry_done
from ehr.clinical.ledger.protocol import load_protocol
from ehr.clinical.ledger.witnesses import WITNESS_ACTION, WitnessCheck, WitnessProof
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.demo.accounts import LOCATION_ID
from ehr.demo.clinic import Clinic
from ehr.demo.course import ESKETAMINE_LOT, KETAMINE_LOT, Dosed
from ehr.fhir.ledger_flags import flag_writer

# A made-up registration whose check digit is right (1+3+5 + 2*(2+4+6) = 33 -> 3); "F" is a
# practitioner registrant prefix, "H" the initial of the clinic's name.
CLINIC_DEA = "FH1234563"
SUPPLIER_DEA = "PS2468139"
SUPPLIER = ("Lakeside Medical Distribution", "40 Depot Road, Springfield, IL 62703")


def operations(clinic: Clinic) -> LedgerOperations:
    return LedgerOperations(clinic.engine, clinic.pipeline.recorder,
                            WitnessCheck(clinic.auth.assertions, clinic.auth.users),
                            load_protocol(), flag_writer(clinic.pipeline))


def register_location(clinic: Clinic, ops: LedgerOperations) -> None:
    """Compliance registers the infusion suite under the clinic's DEA number (once)."""
    with unit_of_work(clinic.engine, write=False) as session:
        if repository.location(session, LOCATION_ID) is not None:
            return

    def work(session: Session, ctx: RequestContext) -> Done[str]:
        row = locations.register(session, ctx.actor,
                                 locations.Registration(LOCATION_ID, CLINIC_DEA))
        return Done(row.location_id, row.location_id, detail={"dea": row.dea_number})

    ops.run(clinic.ctx("compliance"), "location-write", work)


def receive_stock(clinic: Clinic, ops: LedgerOperations, received: dt.date) -> None:
    """The nurse books in a ketamine and an esketamine delivery (21 CFR 1304 receipt)."""
    expiry = received + dt.timedelta(days=540)
    deliveries = (
        entries.Receipt(
            location_id=LOCATION_ID, lot_number=KETAMINE_LOT,
            drug="ketamine hydrochloride injection", form="injection solution",
            strength="50 mg/mL", container_ml=Decimal(10), containers=4, expiry=expiry,
            received=received, supplier_name=SUPPLIER[0], supplier_address=SUPPLIER[1],
            supplier_dea=SUPPLIER_DEA, invoice_number="INV-40711", ndc="0409-2053-10",
            rxnorm="6130"),
        entries.Receipt(
            location_id=LOCATION_ID, lot_number=ESKETAMINE_LOT,
            drug="esketamine nasal spray (Spravato)", form="nasal spray",
            strength="28 mg/0.2 mL", container_ml=Decimal("0.2"), containers=12,
            expiry=expiry, received=received + dt.timedelta(days=14),
            supplier_name=SUPPLIER[0], supplier_address=SUPPLIER[1],
            supplier_dea=SUPPLIER_DEA, invoice_number="INV-40958", ndc="50458-028-02",
            rxnorm="2201625"))
    for receipt in deliveries:
        def work(session: Session, ctx: RequestContext,
                 r: entries.Receipt = receipt) -> Done[str]:
            return entry_done(entries.record_receipt(session, ctx, ops.protocol, r),
                              r.lot_number, LOCATION_ID)

        ops.run(clinic.ctx("nurse"), "receipt", work)


def waste(clinic: Clinic, ops: LedgerOperations, s: Dosed, patient: str,
          drawn_mg: Decimal, at_us: int) -> None:
    """What was drawn for a dose but not given, wasted by the nurse with the physician as
    witness (who re-authenticates for this one entry)."""
    given = Decimal(str(s.mg))
    proof = WitnessProof("physician", clinic.assertion("physician", WITNESS_ACTION))
    request = entries.Waste(
        location_id=LOCATION_ID, lot_number=KETAMINE_LOT, drawn_mg=drawn_mg, given_mg=given,
        wasted_mg=drawn_mg - given, occurred_us=at_us, witness=proof,
        administration=f"MedicationAdministration/{s.administration}",
        patient=f"Patient/{patient}", note="Remainder of the drawn syringe after the infusion")
    ops.run(clinic.ctx("nurse"), "waste", lambda session, ctx: entry_done(
        entries.record_waste(session, ctx, ops.protocol, ops.witnesses, request),
        None, LOCATION_ID))


def count_with_variance(clinic: Clinic, ops: LedgerOperations, at_us: int,
                        missing_mg: Decimal) -> None:
    """The nurse's close-of-business count: the esketamine devices match the books, the
    ketamine vials hold ``missing_mg`` less than the books say (a variance: a Flag)."""
    with unit_of_work(clinic.engine, write=False) as session:
        place = repository.location(session, LOCATION_ID)
        assert place is not None and place.id is not None
        book = {lot.id: (lot.lot_number, repository.balance_at(session, lot.id, at_us))
                for lot, _ in repository.lots(session, place.id) if lot.id is not None}
    lines = [counts.CountLine(number, mg=mg - (missing_mg if number == KETAMINE_LOT else 0),
                              method="exact")
             for number, mg in book.values() if number in (KETAMINE_LOT, ESKETAMINE_LOT)]
    count = counts.PhysicalCount(location_id=LOCATION_ID, kind="ad-hoc", timing="close",
                                 counted_us=at_us, lines=lines,
                                 note="Weekly reconciliation of the controlled-substance safe")

    def work(session: Session, ctx: RequestContext) -> Done[str | None]:
        row, _ = ops.count(session, ctx, count)
        return Done(row.flag, LOCATION_ID,
                    detail={"count": row.id, "variance": row.variance, "flag": row.flag})

    ops.run(clinic.ctx("nurse"), "count", work)
