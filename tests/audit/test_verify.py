"""``verify_chain`` on an intact trail (issue 4 item 4): every record and checkpoint checked,
in batches of any size, with progress; forged checkpoints refused. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from audit.chain_attacks import check, checkpoint_now, head, produce, verifier
from ehr.audit import damage
from ehr.audit.checkpoints import Checkpoint
from ehr.audit.verify import verify_chain
from ehr.auth.checkpoint_signing import checkpoint_signer
from ehr.auth.keys import generate_pem, server_key_from_pem
from ehr.config import Settings


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_empty_trail_is_intact(engine: Engine, settings: Settings) -> None:
    report = check(engine, settings)
    assert report.intact and report.records == 0 and report.last_seq == 0


@pytest.mark.parametrize("batch_size", [1, 3, 10_000])
def test_intact_chain(engine: Engine, settings: Settings, batch_size: int) -> None:
    last = produce(engine, settings)
    checkpoint_now(engine, settings)
    seen: list[tuple[int, int]] = []
    report = verify_chain(engine, verifier(settings), batch_size=batch_size,
                          progress=lambda done, total: seen.append((done, total)))
    assert report.intact, report.summary()
    assert report.records == report.last_seq == last == _count(engine, "audit_record")
    assert report.last_hash == head(engine)[1]
    assert report.checkpoints == _count(engine, "audit_checkpoint") >= 2
    assert seen[-1] == (last, last)
    assert len(seen) == -(-last // batch_size)
    assert "intact" in report.summary() and f"last seq {last}" in report.summary()


def test_checkpoint_signed_by_another_key(engine: Engine, settings: Settings) -> None:
    last, digest = produce(engine, settings), head(engine)[1]
    other = checkpoint_signer(server_key_from_pem(generate_pem()))
    payload = {"seq": last, "hash": digest, "time": 1}
    forged = Checkpoint(last, digest, 1, other(payload), source="forged.json")
    report = check(engine, settings, files=[forged])
    assert report.damage is not None
    assert (report.damage.kind, report.damage.seq) == (damage.FORGED_CHECKPOINT, last)
    assert "forged.json" in report.damage.detail


def test_checkpoint_fields_must_match_what_was_signed(engine: Engine,
                                                     settings: Settings) -> None:
    produce(engine, settings)
    good = checkpoint_now(engine, settings)
    lying = Checkpoint(good.seq - 1, good.hash, good.time, good.jws, source="lying.json")
    report = check(engine, settings, files=[lying])
    assert report.damage is not None and report.damage.kind == damage.FORGED_CHECKPOINT
    assert check(engine, settings, files=[good]).intact
