"""The ledger's protocol data: theft/loss deadlines, who may witness, count tolerance.

Defaults live in ``ehr/clinical/protocols/ledger.json``; a site copy named by
``EHR_LEDGER_PROTOCOL_FILE`` replaces them. This module is the one place that reads them, and
holds the business-day arithmetic the deadlines need.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ehr.instants import from_datetime

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "protocols" / "ledger.json"
PROTOCOL_ENV = "EHR_LEDGER_PROTOCOL_FILE"


class ProtocolError(ValueError):
    """The protocol file is malformed: the service must not run on a half-read protocol."""


@dataclass(frozen=True)
class LedgerProtocol:
    dea_notice_business_days: int
    form_106_days: int
    timezone: str
    holidays: frozenset[dt.date]
    waste_witness_roles: frozenset[str]
    destruction_witness_roles: frozenset[str]
    count_variance_tolerance_mg: Decimal

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add_business_days(self, day: dt.date, count: int) -> dt.date:
        """The ``count``-th business day after ``day`` (weekends and holidays skipped)."""
        while count > 0:
            day += dt.timedelta(days=1)
            if self.is_business_day(day):
                count -= 1
        return day

    def end_of(self, day: dt.date) -> int:
        """The last microsecond of ``day`` in the protocol's time zone."""
        start = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone)
        return from_datetime(start) - 1

    def local_day(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.zone).date()

    def dea_notice_due(self, discovered: dt.datetime) -> int:
        """Written notice to the DEA: by the end of the next business day after discovery."""
        day = self.add_business_days(self.local_day(discovered), self.dea_notice_business_days)
        return self.end_of(day)

    def form_106_due(self, discovered: dt.datetime) -> int:
        """DEA Form 106: by the end of the 45th calendar day after discovery."""
        return self.end_of(self.local_day(discovered) + dt.timedelta(days=self.form_106_days))


def _roles(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{where}: a non-empty list of role names expected")
    return frozenset(value)


def parse_protocol(data: dict[str, Any]) -> LedgerProtocol:
    try:
        loss = data["theft_loss"]
        witnesses = data["witness_roles"]
        protocol = LedgerProtocol(
            dea_notice_business_days=int(loss["dea_notice_business_days"]),
            form_106_days=int(loss["form_106_days"]),
            timezone=str(loss["timezone"]),
            holidays=frozenset(dt.date.fromisoformat(d) for d in loss.get("holidays", [])),
            waste_witness_roles=_roles(witnesses["waste"], "witness_roles.waste"),
            destruction_witness_roles=_roles(witnesses["destruction"],
                                             "witness_roles.destruction"),
            count_variance_tolerance_mg=Decimal(str(data["count_variance_tolerance_mg"])))
        protocol.zone  # noqa: B018  (an unknown time zone must fail here, not at a theft)
    except (KeyError, TypeError, ValueError, InvalidOperation, ZoneInfoNotFoundError) as exc:
        raise ProtocolError(f"ledger protocol: {exc}") from exc
    if protocol.dea_notice_business_days < 0 or protocol.form_106_days < 0 or \
            protocol.count_variance_tolerance_mg < 0:
        raise ProtocolError("ledger protocol: deadlines and tolerance must not be negative")
    return protocol


@lru_cache(maxsize=4)
def _load(path: str) -> LedgerProtocol:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"ledger protocol {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"ledger protocol {path}: a JSON object expected")
    return parse_protocol(data)


def load_protocol() -> LedgerProtocol:
    return _load(os.environ.get(PROTOCOL_ENV) or str(DEFAULT_FILE))
