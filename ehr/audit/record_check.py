"""What a record must satisfy besides its place in the chain: its searchable columns and its
``audit_patient`` rows say what its body says.

This is the exact check, on the parsed body; ``verify_range`` has a faster one for the common
case that falls back to this one whenever it cannot decide. It imports nothing but the standard
library so the range workers start light.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

MINUTE_US = 60_000_000


def minute_text(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of the minute ``minute`` minutes after the epoch."""
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")


def second_text(fraction: int) -> str:
    """``SS.ffffff`` of a number of microseconds within a minute."""
    seconds, micros = divmod(fraction, 1_000_000)
    return f"{seconds:02d}.{micros:06d}"


def same_patients(stored: str | None, named: Any) -> bool:
    """``stored`` is the record's ``audit_patient`` ids joined by spaces, ``named`` the body's."""
    if type(named) is not list or stored is None:
        return False
    if len(named) == 1:
        return stored == named[0]
    return set(stored.split(" ")) == set(named)


def patients_agree(stored: str | None, record: dict[str, Any]) -> bool:
    named = record.get("patients")
    return not (stored or named) or same_patients(stored, named)


def columns_agree(row: Sequence[Any], record: dict[str, Any], time_text: str) -> bool:
    """``row`` is (seq, time, category, interaction, outcome, status, actor_id, actor_kind,
    rtype, rid, version_id, request_id, purpose, protected, ...), ``time_text`` the body's
    rendering of ``row[1]``."""
    try:
        actor = record["actor"]
        resource = record["resource"]
        if resource is None:
            rtype = rid = version = None
        else:
            rtype, rid, version = resource["type"], resource["id"], resource["version"]
        return bool(
            row[2] == record["category"] and row[3] == record["interaction"]
            and row[4] == record["outcome"] and row[5] == record["status"]
            and row[6] == actor["id"] and row[7] == actor["kind"] and row[8] == rtype
            and row[9] == rid and row[10] == version and row[11] == record["request_id"]
            and row[12] == record["purpose_of_use"]
            and bool(row[13]) == bool(record["protected"]) and time_text == record["time"])
    except (KeyError, TypeError):
        return False
