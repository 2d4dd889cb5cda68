"""Checking one contiguous range of the chain at full speed (PostgreSQL), in this process or in
a worker process (``python -m ehr.audit.verify_range``).

The range is streamed with ``COPY (SELECT ...) TO STDOUT``: one text line per record, the
``audit_patient`` ids joined in, read straight from libpq (``get_copy_data``) without a Python
object per column. For each record the hash is recomputed over the raw bytes and its number and
link checked; then its searchable columns are checked against its body without parsing it:

    The fast check runs only when the body held no backslash (so its COPY text is its exact
    bytes, and no JSON string in it contains a quote: every ``"`` is a string delimiter) and
    the columns hold no ``"`` and no backslash but ``\\N`` for NULL (so a column value
    written between quotes is its JSON string). The body is canonical and written by
    ``build_pending``, so each field sits at a known place: actor.id is the first key
    ``,"id":`` (only actor.display precedes it), the top-level ``,"interaction":`` is the last
    one (only ``detail``, before it, can hold objects with arbitrary keys), and every key after
    it is found by the first match after the previous one (the values in between are strings,
    lists of strings or fixed objects). At each place the expected bytes, built from the
    columns, must follow: a value bounded by delimiters on both sides cannot match a different
    value, so an edited column cannot pass. A record that fails the fast check, or cannot take
    it, gets the exact check (``record_check``, on the parsed body) before it counts as bad.

A body written by anyone else has either a wrong hash or a recomputed chain, which the links,
the head and the signed checkpoints catch: the column check only has to be exact for bodies
the server wrote.

The scan stops at the first record that fails; the caller reruns the exact, diagnosing pass
from there (``verify``), so damage is named the same way whatever found it.
"""

from __future__ import annotations

import hashlib
import json
import re
import select
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import psycopg
from psycopg import pq

from ehr.audit.record_check import (
    MINUTE_US,
    columns_agree,
    minute_text,
    patients_agree,
    second_text,
)

NULL = b"\\N"
_COPY = (
    "COPY (SELECT r.body, r.seq, r.time, r.category, r.interaction, r.outcome, r.status, "
    "r.actor_id, r.actor_kind, r.rtype, r.rid, r.version_id, r.request_id, r.purpose, "
    "r.protected, p.ids, r.prev_hash, r.hash FROM audit_record r LEFT JOIN ("
    "SELECT seq, string_agg(patient_id, ' ') AS ids FROM audit_patient "
    "WHERE seq BETWEEN {a} AND {b} GROUP BY seq) p ON p.seq = r.seq "
    "WHERE r.seq BETWEEN {a} AND {b} ORDER BY r.seq) TO STDOUT WITH (ENCODING 'UTF8')")
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


@dataclass
class RangeResult:
    """What a scan of ``first..last`` established.

    ``verified`` records from ``first`` on are numbered without gaps, hash correctly, chain to
    each other (the first one's link, ``first_prev``, is the caller's to check) and agree with
    their columns and patients; ``last_hash``/``before_last`` are the hashes of the last two of
    them. ``agreed`` is the last checkpoint seq among them. ``stopped`` says the scan stopped at
    a record that failed (or a checkpoint it contradicts) rather than at the range's end.
    """

    first: int
    last: int
    verified: int = 0
    first_prev: str | None = None
    last_hash: str | None = None
    before_last: str | None = None
    agreed: int = 0
    stopped: bool = False

    @property
    def complete(self) -> bool:
        return not self.stopped and self.verified == self.last - self.first + 1


class _Stop(Exception):
    """The record at hand failed: the scan ends there."""


def _unescape(field: bytes) -> bytes | None:
    if field == NULL:
        return None
    if b"\\" not in field:
        return field
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), field)


def _text(field: bytes) -> str | None:
    value = _unescape(field)
    return None if value is None else value.decode()


def _number(field: bytes) -> int | None:
    return None if field == NULL else int(field)


def exact_ok(f: Sequence[bytes], expected: int, prev: bytes | None) -> bool:
    """The verifier's exact per-record check on a COPY line split at tabs: number, link (when
    ``prev`` is known), hash, body seq, columns, patients."""
    try:
        body = _text(f[0]) or ""
        prev_hash, digest = _text(f[16]) or "", (_text(f[17]) or "").rstrip("\n")
        seq, time = int(f[1]), int(f[2])
        row = (seq, time, _text(f[3]), _text(f[4]), _text(f[5]), _number(f[6]), _text(f[7]),
               _text(f[8]), _text(f[9]), _text(f[10]), _number(f[11]), _text(f[12]),
               _text(f[13]), f[14] == b"t")
    except (ValueError, UnicodeDecodeError):
        return False
    if seq != expected or (prev is not None and prev_hash.encode() != prev):
        return False
    if hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest() != digest:
        return False
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if type(record) is not dict or record.get("seq") != seq:
        return False
    minute, fraction = divmod(time, MINUTE_US)
    if not columns_agree(row, record, f"{minute_text(minute)}{second_text(fraction)}Z"):
        return False
    return patients_agree(_text(f[15]), record)


def scan(conn: psycopg.Connection[Any], first: int, last: int,
         pins: Mapping[int, Sequence[str]], progress: Callable[[int], None] | None = None,
         every: int = 10_000) -> RangeResult:
    """Check records ``first..last`` in the connection's current transaction.

    ``pins`` are verified checkpoints (seq -> hashes); ``progress`` gets the number of records
    checked so far, every ``every`` records.
    """
    result = RangeResult(first, last)
    stops = sorted(s for s in pins if first <= s <= last)
    pin_hashes = {s: {h.encode() for h in pins[s]} for s in stops}
    stops.append(-1)
    next_pin, stop_at = stops[0], 0
    expected = first
    prev: bytes | None = None
    before: bytes | None = None
    first_prev: bytes | None = None
    minute, prefix = -1, b""
    report_at = first + max(1, every) - 1
    sha256 = hashlib.sha256
    pgconn = conn.pgconn
    get = pgconn.get_copy_data
    socket = pgconn.socket
    with conn.cursor() as cursor, cursor.copy(_COPY.format(a=int(first), b=int(last))):
        while True:
            size, data = get(1)
            if size == 0:  # nothing buffered: wait for the server without holding the GIL
                select.select([socket], [], [])
                pgconn.consume_input()
                continue
            if size < 0:
                _finish(pgconn)
                break
            try:
                line = bytes(data)
                f = line.split(b"\t")
                body, link = f[0], f[16]
                digest = sha256(link + b"\n" + body).hexdigest().encode()
                ok = (f[17][:-1] == digest and (link == prev or prev is None)
                      and int(f[1]) == expected)
                if ok:
                    # The columns: plain text only (see the module docstring), then in place.
                    k = len(body)
                    ok = line.find(b'"', k) < 0 and line.count(b"\\", k) == line.count(NULL, k)
                if ok:
                    at = body.find(b',"id":')
                    ok = at > 0 and body.startswith(
                        (b',"id":"%s","kind":"%s",' % (f[7], f[8])).replace(b'"\\N"', b"null"),
                        at)
                if ok:
                    ok = body.startswith(b'},"category":"%s","detail":' % f[3],
                                         body.find(b'},"category":', at))
                if ok:
                    head = b',"interaction":"%s","outcome":"%s","patients":[' % (f[4], f[5])
                    at = body.rfind(b',"interaction":')
                    ok = at > 0 and body.startswith(head, at)
                    at += len(head)
                if ok:
                    ids = f[15]
                    if ids == NULL:
                        ok = body.startswith(b'],"protected":[', at)
                    elif b" " not in ids:
                        token = b'"%s"' % ids
                        ok = body.startswith(token + b'],"protected":[', at)
                        at += len(token)
                    else:
                        end = body.find(b'],"protected":[', at)
                        ok = end > 0 and set(body[at:end].split(b",")) == {
                            b'"%s"' % i for i in ids.split(b" ")}
                        at = end
                if ok:
                    at += 15
                    if f[14] == b"f":
                        ok = body.startswith(b']', at)
                    else:
                        ok = f[14] == b"t" and body.startswith(b'"', at)
                        at = body.find(b'],"purpose_of_use":', at)
                if ok:
                    tail = (b'],"purpose_of_use":"%s","query":' % f[13]).replace(
                        b'"\\N"', b"null")
                    ok = at > 0 and body.startswith(tail, at)
                    at = body.find(b',"request_id":', at + len(tail))
                if ok:
                    if f[9] == f[10] == f[11] == NULL:
                        part = b',"request_id":"%s","resource":null,"seq":%s,"source":{"ip":' % (
                            f[12], f[1])
                    else:
                        part = (b',"request_id":"%s","resource":{"id":"%s","type":"%s",'
                                b'"version":%s},"seq":%s,"source":{"ip":' % (
                                    f[12], f[10], f[9], f[11], f[1]))
                    ok = at > 0 and body.startswith(
                        part.replace(b'"\\N"', b"null").replace(NULL, b"null"), at)
                if ok:
                    m, fraction = divmod(int(f[2]), MINUTE_US)
                    if m != minute:
                        minute, prefix = m, minute_text(m).encode()
                    ok = body.endswith(b',"status":%s,"time":"%s%02d.%06dZ"}' % (
                        f[6], prefix, *divmod(fraction, 1_000_000)))
                if not ok and not exact_ok(f, expected, prev):
                    raise _Stop
                digest = f[17][:-1]
                if expected == next_pin:
                    if digest not in pin_hashes[expected]:
                        raise _Stop
                    result.agreed = expected
                    stop_at += 1
                    next_pin = stops[stop_at]
                if prev is None:
                    first_prev = _unescape(link)
                before, prev = prev, digest
                if expected == report_at and progress is not None:
                    progress(expected - first + 1)
                    report_at += every
                expected += 1
            except _Stop:
                # Read the rest rather than cancel: a cancelled COPY would abort the
                # transaction, which the caller goes on using.
                result.stopped = True
                _drain(pgconn, socket)
                break
    result.verified = expected - first
    if progress is not None and result.verified % max(1, every):
        progress(result.verified)
    result.first_prev = None if first_prev is None else first_prev.decode()
    result.last_hash = None if prev is None else prev.decode()
    result.before_last = None if before is None else before.decode()
    return result


def _drain(pgconn: pq.abc.PGconn, socket: int) -> None:
    while True:
        size, _ = pgconn.get_copy_data(1)
        if size == 0:
            select.select([socket], [], [])
            pgconn.consume_input()
        elif size < 0:
            _finish(pgconn)
            return


def _finish(pgconn: pq.abc.PGconn) -> None:
    """Collect the COPY's final result ourselves, as ``get_copy_data`` took its end marker."""
    while (res := pgconn.get_result()) is not None:
        if res.status != pq.ExecStatus.COMMAND_OK:
            message = (res.error_message or b"COPY failed").decode(errors="replace")
            raise psycopg.OperationalError(message.strip())


def _work() -> int:
    """Worker entry point: a JSON job on stdin; ``p <n>`` progress lines, then ``r <json>``."""
    job = json.loads(sys.stdin.readline())
    out = sys.stdout

    def progress(done: int) -> None:
        out.write(f"p {done}\n")
        out.flush()

    snapshot = str(job["snapshot"])
    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    with psycopg.connect(job["conninfo"], autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        pins = {int(s): list(h) for s, h in job["pins"].items()}
        result = scan(conn, int(job["first"]), int(job["last"]), pins, progress,
                      int(job["every"]))
        conn.execute("COMMIT")
    out.write("r " + json.dumps(asdict(result)) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_work())
