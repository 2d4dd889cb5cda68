"""A stocked clinic for the ledger's service-level tests: a registered Location, real users
who can re-authenticate (witnesses), and helpers that receive, draw and read balances."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from ehr.auth.service import AuthService
from ehr.clinical.ledger import entries, repository
from ehr.clinical.ledger.draws import DrawRequest, draw_problems, record_draw
from ehr.clinical.ledger.locations import Registration, register
from ehr.clinical.ledger.protocol import LedgerProtocol, load_protocol
from ehr.clinical.ledger.witnesses import WitnessCheck, WitnessProof
from ehr.config import Settings
from ehr.context import SYSTEM, Actor, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer
from ehr.instants import now_us

LOCATION = "clinic-1"
DEA = "BP1234563"  # 1+3+5 + 2*(2+4+6) = 33: check digit 3
PASSWORD = "correct horse battery staple"
STAFF = {"nina": "nurse", "doc": "physician", "doc2": "physician", "tara": "therapist",
         "cora": "compliance"}


def actor(name: str) -> Actor:
    return Actor(id=name, kind="user", display=f"{name.title()}", roles=frozenset({STAFF[name]}))


def ctx_of(name: str) -> RequestContext:
    return RequestContext(actor=actor(name))


def put_location(engine: Engine, settings: Settings, location_id: str = LOCATION) -> None:
    with unit_of_work(engine) as session:
        Writer(Pipeline(settings), session, RequestContext()).update("Location", location_id, {
            "resourceType": "Location", "id": location_id, "name": "Main clinic",
            "address": {"line": ["1 Clinic Way"], "city": "Springfield", "state": "IL"}})


@dataclass
class Stock:
    engine: Engine
    auth: AuthService
    protocol: LedgerProtocol

    @property
    def check(self) -> WitnessCheck:
        return WitnessCheck(self.auth.assertions, self.auth.users)

    def witness(self, name: str, action: str = "ledger-witness") -> WitnessProof:
        with unit_of_work(self.engine) as session:
            issued = self.auth.assertions.issue(session, name, PASSWORD, action)
        assert issued is not None
        return WitnessProof(name, issued.assertion)

    def receive(self, lot: str, containers: int = 1, *, container_ml: str = "10",
                strength: str = "50 mg/mL", expiry: dt.date | None = None,
                location: str = LOCATION) -> Any:
        with unit_of_work(self.engine) as session:
            return entries.record_receipt(session, ctx_of("nina"), self.protocol,
                                          entries.Receipt(
                location_id=location, lot_number=lot, drug="ketamine hydrochloride",
                form="injection solution", strength=strength,
                container_ml=Decimal(container_ml), containers=containers,
                expiry=expiry or dt.date.today() + dt.timedelta(days=365),
                received=dt.date.today() - dt.timedelta(days=1), supplier_name="Pharma Supply",
                supplier_address="2 Depot Rd", supplier_dea=DEA, invoice_number="INV-1",
                ndc="0409-2053-10", rxnorm="6130"))

    def draw_request(self, lot: str, mg: Decimal | str, n: int = 1,
                     ml: Decimal | None = None, when: int | None = None) -> DrawRequest:
        return DrawRequest(location_id=LOCATION, lot_number=lot, mg=Decimal(mg), ml=ml,
                           administration=f"MedicationAdministration/ma-{lot}-{n}",
                           patient="Patient/p1", performer="nina", performer_display="Nina",
                           occurred_us=when or now_us())

    def draw(self, request: DrawRequest) -> list[str]:
        """One draw in its own transaction, as a charted dose would: its problems, if any."""
        with unit_of_work(self.engine) as session:
            problems = draw_problems(session, request)
            if not problems:
                record_draw(session, ctx_of("nina"), request)
        return problems

    def balance(self, lot: str) -> Decimal:
        with unit_of_work(self.engine, write=False) as session:
            return balance_in(session, lot)


def balance_in(session: Session, lot: str) -> Decimal:
    location = repository.location(session, LOCATION)
    assert location is not None and location.id is not None
    found = {row.lot_number: b.mg for row, b in repository.lots(session, location.id)}
    return Decimal(found[lot])


def make_stock(engine: Engine, settings: Settings, auth: AuthService) -> Stock:
    put_location(engine, settings)
    with unit_of_work(engine) as session:
        register(session, SYSTEM, Registration(LOCATION, DEA))
        for name, role in STAFF.items():
            auth.users.create(session, username=name, password=PASSWORD, roles=[role],
                              display_name=name.title())
    return Stock(engine, auth, load_protocol())
