"""Shared by the verification tests: a real trail made through the write and read paths, the
server's checkpoint signer/verifier, and the attacker's tools (a database owner who lifts the
append-only triggers, changes rows with SQL and puts the triggers back)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, text

from ehr.audit import immutability
from ehr.audit.canonical import canonical, link
from ehr.audit.checkpoints import Checkpoint, CheckpointVerifier, take_checkpoint
from ehr.audit.sequencer import Signer
from ehr.audit.verify import Report, verify_chain
from ehr.auth.checkpoint_signing import checkpoint_signer, checkpoint_verifier
from ehr.auth.keys import load_or_create_server_key
from ehr.config import Settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work

NOW = 1_790_000_000_000_000


def signer(settings: Settings) -> Signer:
    return checkpoint_signer(load_or_create_server_key(settings))


def verifier(settings: Settings) -> CheckpointVerifier:
    return checkpoint_verifier(load_or_create_server_key(settings))


def produce(engine: Engine, settings: Settings, patients: int = 4) -> int:
    """Create patients, read each, search them all, update one: one unit of work per request,
    as the API does. Returns the head's sequence number afterwards."""
    from ehr.app import build_pipeline
    from ehr.fhir.reader import Reader
    from ehr.fhir.writer import Writer

    # Chained right after each request: the same checkpoints (the first record's, made
    # automatically) whether or not the background sealer got there first.
    pipeline = build_pipeline(settings.model_copy(update={"audit_seal_interval_ms": 0}))
    ctx = RequestContext(actor=SYSTEM, source_ip="192.0.2.7", user_agent="audit-tests")
    ids: list[str] = []
    for i in range(patients):
        with unit_of_work(engine) as session:
            out = Writer(pipeline, session, ctx).create(
                "Patient", {"resourceType": "Patient", "name": [{"family": f"Chain{i}"}]})
            assert out.stored is not None
            ids.append(out.stored.rid)
    for rid in ids:
        with unit_of_work(engine) as session:
            Reader(pipeline, session, ctx).read("Patient", rid)
    with unit_of_work(engine) as session:
        Reader(pipeline, session, ctx).search("Patient", [("name", "Chain")])
    with unit_of_work(engine) as session:
        Writer(pipeline, session, ctx).update(
            "Patient", ids[0], {"resourceType": "Patient", "id": ids[0],
                                "name": [{"family": "Chain0", "given": ["Changed"]}]})
    return head(engine)[0]


def head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, digest = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    return int(seq), str(digest)


def checkpoint_now(engine: Engine, settings: Settings) -> Checkpoint:
    with unit_of_work(engine) as session:
        return take_checkpoint(session, signer(settings), NOW)


def check(engine: Engine, settings: Settings, files: Sequence[Checkpoint] = (),
          batch_size: int = 10_000) -> Report:
    return verify_chain(engine, verifier(settings), checkpoints=files, batch_size=batch_size)


def record(engine: Engine, seq: int) -> dict[str, Any]:
    """A record's columns, less the unique bookkeeping of where it was sealed from."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_record WHERE seq = :s"), {"s": seq})
        found = dict(row.mappings().one())
    found.pop("pending_id", None)
    return found


def patient_seqs(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(s) for (s,) in conn.execute(
            text("SELECT DISTINCT seq FROM audit_patient ORDER BY seq"))]


@contextmanager
def as_owner(engine: Engine) -> Iterator[Connection]:
    """The attacker who owns the tables: triggers off, tamper, triggers back on."""
    with engine.begin() as conn:
        immutability.remove(conn)
        yield conn
        immutability.install(conn)


def shift(conn: Connection, table: str, first: int, by: int) -> None:
    """Renumber ``seq >= first`` by ``by`` in two steps, so the primary key never collides."""
    conn.execute(text(f"UPDATE {table} SET seq = -seq WHERE seq >= :f"), {"f": first})
    conn.execute(text(f"UPDATE {table} SET seq = -seq + :by WHERE seq < 0"), {"by": by})


def rechain(conn: Connection, start: int) -> None:
    """Recompute every hash from ``start`` on and move the head: the attacker's cover-up."""
    prev = str(conn.execute(text("SELECT hash FROM audit_record WHERE seq = :s"),
                            {"s": start - 1}).scalar_one()) if start > 1 else "0" * 64
    rows = conn.execute(text("SELECT seq, body FROM audit_record WHERE seq >= :s ORDER BY seq"),
                        {"s": start}).all()
    for seq, body in rows:
        digest = link(prev, body)
        conn.execute(text("UPDATE audit_record SET prev_hash = :p, hash = :h WHERE seq = :s"),
                     {"p": prev, "h": digest, "s": seq})
        prev = digest
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                 {"s": rows[-1][0] if rows else start - 1, "h": prev})


def edited_body(body: str, **changes: Any) -> str:
    import json

    data = json.loads(body)
    data.update(changes)
    return canonical(data)
