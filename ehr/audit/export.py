"""Exporting audit records by time range, streamed: NDJSON to verify elsewhere, CSV to sort.

NDJSON lines are ``{"seq", "prev_hash", "hash", "body"}`` with ``body`` the canonical JSON text
exactly as it was hashed, so a reader checks ``sha256(prev_hash + "\\n" + body) == hash`` and
the links between consecutive lines without this code (docs/audit.md). CSV has one column per
field of the record, times in ISO 8601 UTC, so any column sorts as text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from ehr.audit.sequencer import RECORD
from ehr.errors import BadRequest

FORMATS = ("ndjson", "csv")
BATCH = 10_000

CSV_FIELDS = (
    "seq", "time", "category", "interaction", "outcome", "status", "actor_id", "actor_kind",
    "actor_display", "actor_roles", "source_ip", "user_agent", "resource_type", "resource_id",
    "resource_version", "patients", "request_id", "purpose_of_use", "protected", "query",
    "detail", "prev_hash", "hash",
)


def parse_instant(text: str) -> int:
    """An ISO 8601 date or date-time (UTC when no offset is given) as epoch microseconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadRequest(f"{text!r} is not an ISO 8601 date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def records(conn: Connection, *, start: int | None = None, end: int | None = None,
            batch_size: int = BATCH) -> Iterator[tuple[int, str, str, str]]:
    """(seq, body, prev_hash, hash) of records with ``start <= time < end``, by seq."""
    after = 0
    while True:
        query = (sa.select(RECORD.c.seq, RECORD.c.body, RECORD.c.prev_hash, RECORD.c.hash)
                 .where(RECORD.c.seq > after).order_by(RECORD.c.seq).limit(batch_size))
        if start is not None:
            query = query.where(RECORD.c.time >= start)
        if end is not None:
            query = query.where(RECORD.c.time < end)
        rows = conn.execute(query).all()
        if not rows:
            return
        for seq, body, prev_hash, digest in rows:
            yield int(seq), str(body), str(prev_hash), str(digest)
        after = int(rows[-1][0])


def export(conn: Connection, out: TextIO, fmt: str, *, start: int | None = None,
           end: int | None = None, batch_size: int = BATCH) -> int:
    """Write the records to ``out``; returns how many."""
    if fmt not in FORMATS:
        raise BadRequest(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if start is not None and end is not None and end <= start:
        raise BadRequest("the end of the range must come after its start")
    rows = records(conn, start=start, end=end, batch_size=batch_size)
    count = 0
    if fmt == "ndjson":
        for seq, body, prev_hash, digest in rows:
            line = {"seq": seq, "prev_hash": prev_hash, "hash": digest, "body": body}
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
        return count
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for seq, body, prev_hash, digest in rows:
        writer.writerow(csv_row(seq, orjson.loads(body), prev_hash, digest))
        count += 1
    return count


def csv_row(seq: int, record: dict[str, Any], prev_hash: str, digest: str) -> list[Any]:
    actor = record.get("actor") or {}
    source = record.get("source") or {}
    resource = record.get("resource") or {}
    detail = record.get("detail")
    return [
        seq, record.get("time"), record.get("category"), record.get("interaction"),
        record.get("outcome"), record.get("status"), actor.get("id"), actor.get("kind"),
        actor.get("display"), " ".join(actor.get("roles") or ()), source.get("ip"),
        source.get("user_agent"), resource.get("type"), resource.get("id"),
        resource.get("version"), " ".join(record.get("patients") or ()),
        record.get("request_id"), record.get("purpose_of_use"),
        " ".join(record.get("protected") or ()), record.get("query"),
        json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else "",
        prev_hash, digest,
    ]
