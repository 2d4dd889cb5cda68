"""Manual checkpoints and checkpoint files (issue 4 item 4). SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from audit.chain_attacks import NOW, checkpoint_now, head, produce, signer, verifier
from ehr.audit.checkpoints import (
    CheckpointFileError,
    read_checkpoint_file,
    take_checkpoint,
    write_checkpoint_file,
)
from ehr.config import Settings
from ehr.db import unit_of_work
from ehr.errors import Conflict


def test_checkpoint_signs_the_head_and_is_stored(engine: Engine, settings: Settings) -> None:
    last, digest = produce(engine, settings), head(engine)[1]
    cp = checkpoint_now(engine, settings)
    assert (cp.seq, cp.hash, cp.time) == (last, digest, NOW)
    assert verifier(settings)(cp.jws) == {"seq": last, "hash": digest, "time": NOW}
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT hash, jws FROM audit_checkpoint WHERE seq = :s"),
                              {"s": last}).one()
        head_row = conn.execute(text("SELECT checkpoint_seq, checkpoint_time FROM audit_head")
                                ).one()
    assert tuple(stored) == (digest, cp.jws)
    assert tuple(head_row) == (last, NOW)


def test_checkpoint_at_the_same_seq_is_reused(engine: Engine, settings: Settings) -> None:
    produce(engine, settings, patients=1)
    first = checkpoint_now(engine, settings)
    with unit_of_work(engine) as session:
        again = take_checkpoint(session, signer(settings), NOW + 5)
    assert again == first
    produce(engine, settings, patients=1)
    later = checkpoint_now(engine, settings)
    assert later.seq > first.seq


def test_empty_trail_has_nothing_to_sign(engine: Engine, settings: Settings) -> None:
    with pytest.raises(Conflict), unit_of_work(engine) as session:
        take_checkpoint(session, signer(settings), NOW)


def test_checkpoint_file_round_trip(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    produce(engine, settings, patients=1)
    cp = checkpoint_now(engine, settings)
    path = tmp_path / "a" / "cp.json"
    write_checkpoint_file(path, cp)
    assert set(json.loads(path.read_text())) == {"seq", "hash", "time", "jws"}
    back = read_checkpoint_file(path)
    assert (back.seq, back.hash, back.time, back.jws) == (cp.seq, cp.hash, cp.time, cp.jws)
    assert back.source == str(path)


@pytest.mark.parametrize("content", [
    "not json", "[1, 2]", '{"seq": 1}',
    '{"seq": "1", "hash": "' + "a" * 64 + '", "time": 1, "jws": "a.b.c"}',
    '{"seq": 1, "hash": "short", "time": 1, "jws": "a.b.c"}',
    '{"seq": 1, "hash": "' + "a" * 64 + '", "time": 1, "jws": "nojws"}',
])
def test_bad_checkpoint_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CheckpointFileError):
        read_checkpoint_file(path)
    with pytest.raises(CheckpointFileError):
        read_checkpoint_file(tmp_path / "missing.json")
