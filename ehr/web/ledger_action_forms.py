"""The forms of the less frequent ledger entries: destruction (DEA Form 41, two witnesses),
theft/loss reports, closing their follow-up tasks, and corrections.

As in ``ledger_forms``, only the shape of the input is checked here; the ledger's own rules
refuse the rest, and ``refusal`` puts those refusals next to the field they name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ehr.clinical.ledger import entries, losses
from ehr.clinical.ledger.witnesses import WitnessProof
from ehr.web.ledger_forms import FieldReader, FormErrors
from ehr.web.ledger_witness import witness_fields

WITNESSES = ("witness1", "witness2")
# The ledger's names (its expressions and API fields) for these forms' fields.
QUANTITY_NAMES = {"location_id": "location_id", "location": "location_id",
                  "lot_number": "lot_number", "quantity": "mg", "mg": "mg", "ml": "ml"}
DESTRUCTION_NAMES = {**QUANTITY_NAMES, "method": "method", "place": "place",
                     "destroyed": "destroyed", "containers": "containers", "reason": "reason"}
LOSS_NAMES = {**QUANTITY_NAMES, "kind": "kind", "circumstances": "circumstances",
              "discovered": "discovered"}
CORRECTION_NAMES = {"reason": "reason", "entry": "entry_id"}


def _quantity(read: FieldReader, form: Mapping[str, str], what: str
              ) -> tuple[Decimal | None, Decimal | None]:
    mg = read.decimal("mg", f"quantity {what} (mg)", required=False)
    ml = read.decimal("ml", f"quantity {what} (mL)", required=False)
    if mg is None and ml is None and not (form.get("mg", "").strip()
                                          or form.get("ml", "").strip()):
        read.errors.add("mg", f"Enter the quantity {what} in mg or in mL.")
    return mg, ml


# -- destruction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DestructionForm:
    location_id: str
    lot_number: str
    mg: Decimal | None
    ml: Decimal | None
    destroyed_us: int | None
    method: str
    place: str | None
    containers: int | None
    reason: str | None
    witnesses: tuple[tuple[str, str, str], ...]  # (field prefix, user name, password)

    def request(self, proofs: Sequence[WitnessProof], now_us: int) -> entries.Destruction:
        return entries.Destruction(
            location_id=self.location_id, lot_number=self.lot_number, mg=self.mg, ml=self.ml,
            destroyed_us=self.destroyed_us or now_us, method=self.method, place=self.place,
            witnesses=list(proofs), containers=self.containers, reason=self.reason)


def destruction(form: Mapping[str, str], zone: dt.tzinfo
                ) -> tuple[DestructionForm | None, FormErrors]:
    errors = FormErrors()
    read = FieldReader(form, errors)
    location = read.text("location_id", "location")
    lot = read.text("lot_number", "lot number")
    mg, ml = _quantity(read, form, "destroyed")
    destroyed = read.moment("destroyed", "date and time of destruction", zone)
    method = read.text("method", "method of destruction")
    containers = None
    if form.get("containers", "").strip():
        containers = read.integer("containers", "number of containers")
    typed = []
    for prefix, label in zip(WITNESSES, ("first witness's", "second witness's"), strict=True):
        username, password = witness_fields(prefix, form, errors, label)
        typed.append((prefix, username, password))
    if typed[0][1] and typed[0][1].lower() == typed[1][1].lower():
        errors.add("witness2_username", "The two witnesses must be different people.")
    if errors:
        return None, errors
    return DestructionForm(location, lot, mg, ml, destroyed, method,
                           form.get("place", "").strip() or None, containers,
                           form.get("reason", "").strip() or None, tuple(typed)), errors


def witness_refusal(diagnostics: str, typed: Sequence[tuple[str, str, str]]) -> str:
    """The witness field a ledger refusal about ``witnesses`` concerns: the one it names."""
    for prefix, username, _ in typed:
        if f"'{username.strip().lower()}'" in diagnostics:
            return f"{prefix}_username"
    return f"{typed[-1][0]}_username" if "different people" in diagnostics \
        else f"{typed[0][0]}_username"


# -- theft and loss ------------------------------------------------------------------------


def loss(form: Mapping[str, str], zone: dt.tzinfo) -> tuple[losses.Loss | None, FormErrors]:
    errors = FormErrors()
    read = FieldReader(form, errors)
    location = read.text("location_id", "location")
    lot = read.text("lot_number", "lot number")
    kind = form.get("kind", "")
    if kind not in losses.LOSS_KINDS:
        errors.add("kind", "Choose theft or loss.")
    mg, ml = _quantity(read, form, "missing")
    discovered = read.moment("discovered", "time of discovery", zone)
    if discovered is None and not form.get("discovered", "").strip():
        errors.add("discovered", "Enter when the theft or loss was discovered.")
    circumstances = read.text("circumstances", "circumstances (what happened, how it was "
                                               "found)")
    if errors or discovered is None:
        return None, errors
    return losses.Loss(location_id=location, lot_number=lot, mg=mg, ml=ml,
                       discovered_us=discovered, circumstances=circumstances,
                       kind=kind), errors


# -- corrections ---------------------------------------------------------------------------


def correction(form: Mapping[str, str]) -> tuple[tuple[int, str] | None, FormErrors]:
    errors = FormErrors()
    entry = form.get("entry_id", "").strip()
    if not entry.isdigit() or int(entry) < 1:
        errors.add("entry_id", "Enter the number of the ledger entry to correct.")
    reason = form.get("reason", "").strip()
    if not reason:
        errors.add("reason", "Give the reason for the correction.")
    if errors:
        return None, errors
    return (int(entry), reason), errors
