"""The ledger's web forms: posted text turned into the ledger's requests, and refusals turned
into plain words next to the field they concern.

Only the shape of the input is checked here (a number, a date, a field left empty); every
ledger rule is the ledger's own (``ehr.clinical.ledger``), whose refusals name the field in
their ``expression``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ehr.auth.identifiers import is_valid_dea
from ehr.clinical.ledger import counts, entries
from ehr.clinical.ledger.witnesses import WitnessProof
from ehr.errors import EhrError
from ehr.instants import from_datetime


@dataclass
class FormErrors:
    """Errors by form field, and those that concern no single field."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, text: str) -> None:
        if name is None:
            self.general.append(text)
        elif name in self.fields:
            self.fields[name] += " " + text
        else:
            self.fields[name] = text


def sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


def refusal(err: EhrError, names: Mapping[str, str], errors: FormErrors | None = None
            ) -> FormErrors:
    """A ledger refusal as form errors: an issue whose expression names a form field goes
    next to it, the others above the form."""
    out = errors if errors is not None else FormErrors()
    for issue in err.issues:
        where = next((names[e] for e in issue.expression if e in names), None)
        out.add(where, sentence(issue.diagnostics))
    return out


class FieldReader:
    """Reads a posted form's fields, noting a plain-words error next to each bad one."""

    def __init__(self, form: Mapping[str, str], errors: FormErrors) -> None:
        self.form, self.errors = form, errors

    def text(self, name: str, label: str, *, required: bool = True) -> str:
        value = self.form.get(name, "").strip()
        if required and not value:
            self.errors.add(name, f"Enter the {label}.")
        return value

    def decimal(self, name: str, label: str, *, required: bool = True) -> Decimal | None:
        value = self.form.get(name, "").strip()
        if not value:
            if required:
                self.errors.add(name, f"Enter the {label}.")
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.errors.add(name, f"The {label} must be a number, such as 12.5.")
            return None
        return number

    def integer(self, name: str, label: str) -> int:
        value = self.form.get(name, "").strip()
        if not value.isdigit():
            self.errors.add(name, f"The {label} must be a whole number.")
            return 0
        return int(value)

    def date(self, name: str, label: str) -> dt.date:
        value = self.form.get(name, "").strip()
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.errors.add(name, f"Enter the {label} as a date (YYYY-MM-DD).")
            return dt.date.min

    def moment(self, name: str, label: str, zone: dt.tzinfo) -> int | None:
        """A local date-time (``datetime-local``) in the clinic's zone; empty means now."""
        value = self.form.get(name, "").strip()
        if not value:
            return None
        try:
            return from_datetime(dt.datetime.fromisoformat(value).replace(tzinfo=zone))
        except ValueError:
            self.errors.add(name, f"Enter the {label} as a date and time.")
            return None


# -- receipt -------------------------------------------------------------------------------

RECEIPT_FIELDS = ("location_id", "lot_number", "drug", "ndc", "rxnorm", "form", "strength",
                  "container_ml", "containers", "expiry", "received", "supplier_name",
                  "supplier_address", "supplier_dea", "invoice_number")
# The ledger's (and its API's) names for the receipt form's fields.
RECEIPT_NAMES = {**{n: n for n in RECEIPT_FIELDS}, "supplier.name": "supplier_name",
                 "supplier.address": "supplier_address",
                 "supplier.dea_number": "supplier_dea", "location": "location_id"}


def receipt(form: Mapping[str, str]) -> tuple[entries.Receipt | None, FormErrors]:
    errors = FormErrors()
    read = FieldReader(form, errors)
    location = read.text("location_id", "location")
    lot = read.text("lot_number", "lot number")
    drug = read.text("drug", "drug name")
    dosage_form = read.text("form", "dosage form")
    strength = read.text("strength", "strength")
    container_ml = read.decimal("container_ml", "volume per container (mL)")
    containers = read.integer("containers", "number of containers")
    expiry = read.date("expiry", "expiry date")
    received = read.date("received", "date received")
    supplier_name = read.text("supplier_name", "supplier's name")
    supplier_address = read.text("supplier_address", "supplier's address")
    supplier_dea = read.text("supplier_dea", "supplier's DEA number")
    invoice = read.text("invoice_number", "invoice number")
    if supplier_dea and not is_valid_dea(supplier_dea.upper()):
        errors.add("supplier_dea", "A DEA number is 2 letters and 7 digits with a valid "
                                   "check digit.")
    if errors or container_ml is None:
        return None, errors
    return entries.Receipt(
        location_id=location, lot_number=lot, drug=drug, form=dosage_form, strength=strength,
        container_ml=container_ml, containers=containers, expiry=expiry, received=received,
        supplier_name=supplier_name, supplier_address=supplier_address,
        supplier_dea=supplier_dea, invoice_number=invoice,
        ndc=form.get("ndc", "").strip() or None,
        rxnorm=form.get("rxnorm", "").strip() or None), errors


# -- waste ---------------------------------------------------------------------------------

WASTE_NAMES = {"location_id": "location_id", "location": "location_id",
               "lot_number": "lot_number", "drawn_mg": "drawn_mg", "given_mg": "given_mg",
               "wasted_mg": "wasted_mg", "administration": "administration",
               "patient": "patient", "witnesses": "witness_username",
               "witness": "witness_username", "occurred": "occurred"}


@dataclass(frozen=True)
class WasteForm:
    location_id: str
    lot_number: str
    drawn_mg: Decimal
    given_mg: Decimal
    wasted_mg: Decimal
    occurred_us: int | None
    administration: str | None
    patient: str | None
    note: str | None
    witness_username: str
    witness_password: str

    def request(self, assertion: str, now_us: int) -> entries.Waste:
        return entries.Waste(
            location_id=self.location_id, lot_number=self.lot_number, drawn_mg=self.drawn_mg,
            given_mg=self.given_mg, wasted_mg=self.wasted_mg,
            occurred_us=self.occurred_us or now_us,
            witness=WitnessProof(self.witness_username, assertion),
            administration=self.administration, patient=self.patient, note=self.note)


def waste(form: Mapping[str, str], zone: dt.tzinfo) -> tuple[WasteForm | None, FormErrors]:
    errors = FormErrors()
    read = FieldReader(form, errors)
    location = read.text("location_id", "location")
    lot = read.text("lot_number", "lot number")
    drawn = read.decimal("drawn_mg", "amount drawn (mg)")
    given = read.decimal("given_mg", "amount given (mg)")
    wasted = read.decimal("wasted_mg", "amount wasted (mg)")
    occurred = read.moment("occurred", "time of the waste", zone)
    witness = read.text("witness_username", "witness's user name")
    password = form.get("witness_password", "")
    if not password:
        errors.add("witness_password", "The witness types their own password here.")
    if errors or drawn is None or given is None or wasted is None:
        return None, errors
    return WasteForm(location, lot, drawn, given, wasted, occurred,
                     form.get("administration", "").strip() or None,
                     form.get("patient", "").strip() or None,
                     form.get("note", "").strip() or None, witness, password), errors


# -- count ---------------------------------------------------------------------------------

COUNT_NAMES = {"kind": "kind", "timing": "timing", "counted": "counted",
               "location_id": "location_id", "lines": "lines"}


def count(form: Mapping[str, str], lots: list[str], zone: dt.tzinfo, now_us: int
          ) -> tuple[counts.PhysicalCount | None, FormErrors]:
    """A count form lists the location's lots as ``lot-<i>`` with ``mg-<i>`` or ``ml-<i>``
    and ``method-<i>``; a lot left blank is not counted (an initial or biennial count then
    takes it as 0, as the ledger does)."""
    errors = FormErrors()
    read = FieldReader(form, errors)
    location = read.text("location_id", "location")
    kind, timing = form.get("kind", ""), form.get("timing", "")
    if kind not in counts.COUNT_KINDS:
        errors.add("kind", "Choose the kind of count.")
    if timing not in counts.TIMINGS:
        errors.add("timing", "Choose opening or close of business.")
    counted = read.moment("counted", "time of the count", zone)
    lines = []
    for i, lot in enumerate(lots):
        mg = read.decimal(f"mg-{i}", f"count of lot {lot} (mg)", required=False)
        ml = read.decimal(f"ml-{i}", f"count of lot {lot} (mL)", required=False)
        method = form.get(f"method-{i}", "exact")
        if method not in counts.METHODS:
            errors.add(f"method-{i}", "Choose exact or estimated.")
        if mg is not None or ml is not None:
            lines.append(counts.CountLine(lot, mg, ml, method))
    if not lines and kind == "ad-hoc":
        errors.add("lines", "Enter the count of at least one lot.")
    if errors:
        return None, errors
    return counts.PhysicalCount(location_id=location, kind=kind, timing=timing,
                                counted_us=counted or now_us, lines=lines,
                                note=form.get("note", "").strip() or None), errors


def count_line_names(lots: list[str]) -> dict[str, str]:
    """The ledger names a count line's problem "count of lot <n>": put it next to that lot."""
    return {f"count of lot {lot}": f"mg-{i}" for i, lot in enumerate(lots)}
