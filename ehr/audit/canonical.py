"""The canonical serialisation of an audit record, and the hash chain over it.

Documented so anyone can verify the trail without this code or the database:

    body      = JSON of the record object: UTF-8, keys sorted, no insignificant white space
                (separators "," and ":"), non-ASCII characters written as themselves, only
                strings, integers, booleans, null, arrays and objects (no floats).
    hash      = lower-case hex SHA-256 of  prev_hash + "\\n" + body  (UTF-8 bytes)
    prev_hash = the previous record's hash; the first record's is 64 zeros.
    seq       = 1, 2, 3, ... with no gaps; it is also inside the body.

A record is written before it has a number (``split``): the canonical text of everything but
``seq``, cut where ``"seq":`` belongs in key order, so the sealer that numbers it later only
joins ``head + str(seq) + tail`` and never re-serialises.

A checkpoint is a JWS (compact serialisation) whose payload is {"seq", "hash", "time"} signed
with the server's key; it pins the chain up to ``seq``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


# One encoder for every record: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: dict[str, Any]) -> str:
    return _ENCODER.encode(record)


def link(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def split(record: dict[str, Any]) -> tuple[str, str]:
    """The canonical text of ``{**record, "seq": n}`` for any n, as ``(head, tail)`` around n.

    Top-level keys sort before or after "seq"; the encoder writes an object as "{", its
    members in key order joined by ",", then "}", so the two halves can be serialised apart.
    """
    before = {k: v for k, v in record.items() if k < "seq"}
    after = {k: v for k, v in record.items() if k > "seq"}
    head = canonical(before)[:-1] + ("," if before else "") + '"seq":'
    tail = ("," if after else "") + canonical(after)[1:]
    return head, tail


def join(head: str, seq: int, tail: str) -> str:
    return f"{head}{seq}{tail}"
