"""Physical counts (inventories) reconciled, lot by lot, against the book balance.

The book balance of a lot at the count's time is the sum of its entries up to then
(received - administered - wasted - destroyed - lost, with corrections). A count line whose
counted quantity differs from it by more than the protocol's tolerance is a variance; any
variance raises a compliance ``Flag`` about the Location. An initial or biennial inventory
covers the whole location, so a lot it leaves out that still has stock on the books counts as
zero; an ad hoc count covers only the lots it lists.

Two steps, because the Flag is stored through the FHIR write path, which this layer cannot
reach: :func:`reconcile` (locks the lots and computes) and :func:`record_count` (appends the
count with the stored Flag's reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ehr.clinical.flags import build_flag
from ehr.clinical.ledger import locations, repository
from ehr.clinical.ledger.entries import amount
from ehr.clinical.ledger.protocol import LedgerProtocol
from ehr.clinical.ledger.quantities import ZERO, ml_of
from ehr.clinical.ledger.quantities import text as qty
from ehr.clinical.ledger.tables import CountLineRow, CountRow, LocationRow, LotRow
from ehr.context import Actor, RequestContext
from ehr.errors import BadRequest, NotFound
from ehr.instants import instant, now_us

COUNT_KINDS = ("initial", "biennial", "ad-hoc")
TIMINGS = ("opening", "close")
METHODS = ("exact", "estimated")
VARIANCE_KIND = "ledger-variance"


@dataclass(frozen=True)
class CountLine:
    lot_number: str
    mg: Decimal | None = None
    ml: Decimal | None = None
    method: str = "exact"
    containers: int | None = None


@dataclass(frozen=True)
class PhysicalCount:
    location_id: str
    kind: str
    timing: str
    counted_us: int
    lines: Sequence[CountLine]
    note: str | None = None


@dataclass(frozen=True)
class Line:
    lot: LotRow
    method: str
    containers: int | None
    counted_mg: Decimal
    expected_mg: Decimal

    @property
    def variance_mg(self) -> Decimal:
        return self.counted_mg - self.expected_mg


@dataclass(frozen=True)
class Reconciliation:
    count: PhysicalCount
    location: LocationRow
    lines: list[Line]
    variances: list[Line]


def _check(count: PhysicalCount) -> None:
    if count.kind not in COUNT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(COUNT_KINDS)}", expression=("kind",))
    if count.timing not in TIMINGS:
        raise BadRequest(f"timing must be one of {', '.join(TIMINGS)}", expression=("timing",))
    numbers = [line.lot_number for line in count.lines]
    if len(set(numbers)) != len(numbers):
        raise BadRequest("each lot may appear once in a count", expression=("lines",))
    if not numbers and count.kind == "ad-hoc":
        raise BadRequest("an ad hoc count lists at least one lot", expression=("lines",))
    for line in count.lines:
        if line.method not in METHODS:
            raise BadRequest(f"method must be one of {', '.join(METHODS)}",
                             expression=("lines",))
    if count.counted_us > now_us() + 60_000_000:
        raise BadRequest("the count's time is in the future", expression=("counted",))


def _counted(lot: LotRow, line: CountLine) -> Decimal:
    return amount(lot, line.mg, line.ml, f"count of lot {lot.lot_number}", allow_zero=True)


def reconcile(session: Session, protocol: LedgerProtocol,
              count: PhysicalCount) -> Reconciliation:
    """Lock the location's counted lots and compare each with its book balance."""
    _check(count)
    location = locations.require(session, count.location_id)
    assert location.id is not None
    given = {line.lot_number: line for line in count.lines}
    lines: list[Line] = []
    for lot, _balance in repository.lots(session, location.id):
        line = given.pop(lot.lot_number, None)
        state = repository.lock_lot(session, location.id, lot.lot_number)
        assert state is not None and lot.id is not None
        expected = repository.balance_at(session, lot.id, count.counted_us)
        if line is None:
            if count.kind == "ad-hoc" or expected == 0:
                continue
            line = CountLine(lot.lot_number, mg=ZERO, method="exact")
        lines.append(Line(lot, line.method, line.containers, _counted(lot, line), expected))
    if given:
        raise NotFound(f"lot(s) {', '.join(sorted(given))} not stocked at "
                       f"Location/{count.location_id}")
    tolerance = protocol.count_variance_tolerance_mg
    variances = [line for line in lines if abs(line.variance_mg) > tolerance]
    return Reconciliation(count, location, lines, variances)


def variance_flag(rec: Reconciliation, actor: Actor) -> dict[str, Any] | None:
    """The compliance Flag a count with variances raises (None when it balanced)."""
    if not rec.variances:
        return None
    parts = "; ".join(
        f"lot {v.lot.lot_number}: counted {qty(v.counted_mg)} mg, book {qty(v.expected_mg)} mg "
        f"(variance {qty(v.variance_mg)} mg)" for v in rec.variances)
    text = (f"Controlled-substance count variance at {rec.location.name} "
            f"({rec.count.kind} count, {rec.count.timing} of business, "
            f"{instant(rec.count.counted_us)}): {parts}")
    return build_flag(None, VARIANCE_KIND, text, category="admin",
                      subject=f"Location/{rec.location.location_id}",
                      author=actor.practitioner, start=instant(rec.count.counted_us))


def record_count(session: Session, ctx: RequestContext, rec: Reconciliation,
                 flag: str | None) -> tuple[CountRow, list[CountLineRow]]:
    assert rec.location.id is not None
    row = CountRow(location_pk=rec.location.id, kind=rec.count.kind, timing=rec.count.timing,
                   counted_us=rec.count.counted_us, recorded_us=now_us(),
                   actor_id=ctx.actor.id, actor_display=ctx.actor.display or ctx.actor.id,
                   request_id=ctx.request_id, note=rec.count.note,
                   variance=bool(rec.variances), flag=flag)
    repository.add(session, row)
    assert row.id is not None
    out = []
    for line in rec.lines:
        assert line.lot.id is not None
        conc = line.lot.concentration
        out.append(repository.add(session, CountLineRow(
            count_pk=row.id, lot_pk=line.lot.id, method=line.method, containers=line.containers,
            counted_mg=line.counted_mg, counted_ml=ml_of(line.counted_mg, conc),
            expected_mg=line.expected_mg, expected_ml=ml_of(line.expected_mg, conc),
            variance_mg=line.variance_mg, variance_ml=ml_of(line.variance_mg, conc))))
    return row, out
