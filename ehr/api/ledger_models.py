"""Request and response bodies of ``/api/ledger`` (they document the OpenAPI schema).

Quantities are exact decimals: requests take a JSON number or a decimal string (at most 4
places), responses give decimal strings so no client parses them into floats by accident.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_QTY = "decimal, at most 4 places"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorOut(BaseModel):
    detail: str = Field(description="What was wrong, in plain words")
    issues: list[dict[str, Any]] = Field(description="Every problem as an OperationOutcome "
                                                     "issue (severity, code, diagnostics)")


class LocationIn(_In):
    location_id: str = Field(description="Id of an existing FHIR Location")
    dea_number: str = Field(description="DEA registration number (2 letters, 7 digits, valid "
                                        "check digit)")
    name: str | None = Field(None, description="Defaults to the Location's name")
    address: str | None = Field(None, description="Defaults to the Location's address")


class LocationChange(_In):
    name: str | None = None
    address: str | None = None
    dea_number: str | None = None


class LocationOut(BaseModel):
    location_id: str
    name: str
    address: str
    dea_number: str
    registered: str
    registered_by: str
    updated: str


class LotOut(BaseModel):
    lot_number: str
    drug: str
    ndc: str | None
    rxnorm: str | None
    form: str
    strength: str
    concentration_mg_per_ml: str
    container_ml: str
    expiry: dt.date
    balance_mg: str
    balance_ml: str


class SupplierIn(_In):
    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    dea_number: str


class ReceiptIn(_In):
    location_id: str
    lot_number: str = Field(min_length=1, max_length=64)
    drug: str = Field(min_length=1, max_length=200, description="e.g. Ketamine HCl")
    ndc: str | None = Field(None, description="Hyphenated NDC, e.g. 0409-2053-10")
    rxnorm: str | None = Field(None, max_length=16)
    form: str = Field(min_length=1, max_length=64, description="e.g. injection solution")
    strength: str = Field(description="e.g. '50 mg/mL' or '500 mg/10 mL'")
    container_ml: Decimal = Field(description=f"Volume per container in mL ({_QTY})")
    containers: int = Field(ge=1, description="Number of containers received")
    expiry: dt.date
    received: dt.date = Field(description="Date actually received")
    supplier: SupplierIn
    invoice_number: str = Field(min_length=1, max_length=64)


class WitnessIn(_In):
    username: str = Field(description="The witness's user name")
    assertion: str = Field(description="The witness's signing assertion from POST "
                                       "/auth/reauth (single use, action ledger-witness)")


class WasteIn(_In):
    location_id: str
    lot_number: str
    drawn_mg: Decimal = Field(description=f"mg drawn ({_QTY})")
    given_mg: Decimal = Field(description="mg given (0 when nothing was given)")
    wasted_mg: Decimal = Field(description="mg wasted; drawn = given + wasted")
    occurred: AwareDatetime | None = Field(None, description="When; defaults to now")
    administration: str | None = Field(None, description="MedicationAdministration/<id> the "
                                                         "dose was drawn for")
    patient: str | None = Field(None, description="Patient/<id>")
    note: str | None = None
    witness: WitnessIn


class DestructionIn(_In):
    location_id: str
    lot_number: str
    mg: Decimal | None = Field(None, description="Quantity in mg (or give ml)")
    ml: Decimal | None = None
    containers: int | None = Field(None, ge=0)
    destroyed: AwareDatetime | None = Field(None, description="Date of destruction; "
                                                              "defaults to now")
    method: str = Field(min_length=1, description="Method of destruction")
    place: str | None = Field(None, description="Where; defaults to the location's address")
    reason: str | None = None
    witnesses: list[WitnessIn] = Field(description="Two different witnesses")


class LossIn(_In):
    location_id: str
    lot_number: str
    mg: Decimal | None = None
    ml: Decimal | None = None
    kind: Literal["theft", "loss"] = "theft"
    discovered: AwareDatetime = Field(description="When the theft or loss was discovered")
    circumstances: str = Field(min_length=1)


class CountLineIn(_In):
    lot_number: str
    mg: Decimal | None = Field(None, description="Counted mg (or give ml)")
    ml: Decimal | None = None
    method: Literal["exact", "estimated"] = "exact"
    containers: int | None = Field(None, ge=0, description="Containers counted")


class CountIn(_In):
    location_id: str
    kind: Literal["initial", "biennial", "ad-hoc"]
    timing: Literal["opening", "close"] = Field(description="Opening or close of business")
    counted: AwareDatetime | None = Field(None, description="When; defaults to now")
    note: str | None = None
    lines: list[CountLineIn] = Field(default_factory=list)


class CorrectionIn(_In):
    reason: str = Field(min_length=1, description="Why the entry is wrong")


class TaskCloseIn(_In):
    reference: str = Field(min_length=1, max_length=200,
                           description="e.g. the DEA confirmation or Form 106 number")
    note: str | None = None


class WitnessOut(BaseModel):
    id: str
    display: str | None


class EntryOut(BaseModel):
    id: int
    kind: str
    location_id: str
    dea_number: str
    lot_number: str
    drug: str
    ndc: str | None
    strength: str
    mg: str = Field(description="Signed: receipts add, everything else removes")
    ml: str
    balance_mg: str = Field(description="The lot's balance after this entry")
    balance_ml: str
    occurred: str
    recorded: str
    actor: str
    actor_display: str
    patient: str | None
    administration: str | None
    witnesses: list[WitnessOut]
    corrects: int | None
    reason: str | None
    detail: dict[str, Any]


class TaskClosureOut(BaseModel):
    closed: str
    reference: str
    note: str | None
    by: str


class TaskOut(BaseModel):
    id: int
    kind: Literal["dea-notice", "form-106"]
    description: str
    location_id: str
    entry: int
    due: str
    status: Literal["open", "overdue", "completed"]
    closure: TaskClosureOut | None


class LossOut(BaseModel):
    entry: EntryOut
    tasks: list[TaskOut]


class CountLineOut(BaseModel):
    lot_number: str
    method: str
    containers: int | None
    counted_mg: str
    counted_ml: str
    expected_mg: str
    expected_ml: str
    variance_mg: str
    variance_ml: str


class CountOut(BaseModel):
    id: int
    location_id: str
    kind: str
    timing: str
    counted: str
    variance: bool
    flag: str | None = Field(description="Flag/<id> raised for compliance when any lot "
                                         "differed from the books")
    lines: list[CountLineOut]
