"""``ehr demo`` seeds a whole clinic through the real services: patients at every stage,
readable by their care team, a ledger that balances, a count variance Flag, an intact audit
chain, and nothing seeded twice with ``--if-empty``. SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ehr.app import build_pipeline
from ehr.audit.verify import verify_chain
from ehr.auth.checkpoint_signing import checkpoint_verifier
from ehr.auth.keys import load_or_create_server_key
from ehr.auth.service import AuthService
from ehr.clinical.ledger import repository as ledger_repository
from ehr.clinical.ledger.counts import VARIANCE_KIND
from ehr.clinical.notes.kinds import kind_code
from ehr.config import Settings
from ehr.db import unit_of_work
from ehr.demo import Seeded, seed_clinic, seed_demo
from ehr.demo.accounts import LOCATION_ID, passwords
from ehr.demo.clinic import Clinic
from ehr.demo.course import ESKETAMINE_LOT, KETAMINE_LOT
from ehr.demo.patients import ROSTER, STAGES
from ehr.demo.seed import COUNT_SHORTFALL_MG
from ehr.fhir.definitions_loader import publish_definitions

pytestmark = pytest.mark.slow

EXPECTED_ELIGIBILITY = {
    "referred": "none", "needs-review": "needs-review", "not-eligible": "not-eligible",
    "item-9-flag": "none", "eligible": "eligible", "mid-course": "eligible",
    "completed": "eligible", "esketamine": "eligible",
}
# Finished (discharged) sessions a patient of each stage may have.
SESSIONS = {"mid-course": range(2, 4), "completed": range(4, 7), "esketamine": range(2, 3)}


@pytest.fixture
def seeded(engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    # Real argon2id at a small cost: the demo re-authenticates for every signature.
    monkeypatch.setenv("EHR_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("EHR_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("EHR_AUTH_ARGON2_PARALLELISM", "1")
    publish_definitions(engine, build_pipeline(settings))
    return seed_clinic(engine, settings)


@pytest.fixture
def clinic(engine: Engine, settings: Settings, seeded: Seeded) -> Clinic:
    pipeline = build_pipeline(settings)
    return Clinic(engine, pipeline, AuthService.create(engine, settings,
                                                       recorder=pipeline.recorder), passwords())


def _entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in body.get("entry") or []
            if e.get("search", {}).get("mode", "match") == "match"]


def _search(clinic: Clinic, who: str, query: str) -> list[dict[str, Any]]:
    return _entries(clinic.read(who, query))


def _param(body: dict[str, Any], name: str) -> Any:
    return next(p for p in body["parameter"] if p["name"] == name)


def _scores(clinic: Clinic, patient: str, instrument: str) -> list[float]:
    body = clinic.read("physician", f"Patient/{patient}/$scores?instrument={instrument}")
    return [next(part["valueQuantity"]["value"] for part in p["part"] if part["name"] == "value")
            for p in body.get("parameter") or [] if p["name"] == "score"]


def _stages(seeded: Seeded, clinic: Clinic) -> None:
    assert {stage: len(ids) for stage, ids in seeded.stages.items()} == \
        dict(Counter(p.stage for p in ROSTER)) | {s: 0 for s in STAGES
                                                  if s not in {p.stage for p in ROSTER}}
    assert len(seeded.patients) == 12
    for stage, ids in seeded.stages.items():
        for patient in ids:
            # The physician on the care team reads the chart.
            assert clinic.read("physician", f"Patient/{patient}")["id"] == patient
            status = clinic.read("physician", f"Patient/{patient}/$eligibility")
            assert _param(status, "status")["valueCode"] == EXPECTED_ELIGIBILITY[stage], stage
            finished = _search(clinic, "physician",
                               f"Encounter?patient={patient}&status=finished")
            doses = _search(clinic, "nurse", f"MedicationAdministration?patient={patient}")
            assert len(doses) == len(finished)
            assert len(finished) in SESSIONS.get(stage, range(0, 1)), stage
            responses = _search(clinic, "therapist",
                                f"QuestionnaireResponse?subject=Patient/{patient}")
            assert (not responses) == (stage == "referred"), stage


def _course_records(seeded: Seeded, clinic: Clinic) -> None:
    for patient in seeded.stages["completed"]:
        for instrument in ("phq-9", "gad-7"):
            trend = _scores(clinic, patient, instrument)
            assert len(trend) >= 3 and trend == sorted(trend, reverse=True) and \
                trend[0] > trend[-1], (instrument, trend)
    ptsd = [p for p in seeded.stages["completed"] if _scores(clinic, p, "pcl-5")]
    assert ptsd and _scores(clinic, ptsd[0], "pcl-5")[-1] < 33
    [flagged] = seeded.stages["item-9-flag"]
    for patient in seeded.patients:
        flags = _search(clinic, "physician", f"Flag?patient={patient}&status=active")
        kinds = [c["code"] for f in flags for c in f["code"]["coding"]]
        assert ("phq9-item9-positive" in kinds) == (patient == flagged)
        assert "monitoring-threshold" not in kinds
    events = [e for p in seeded.stages["mid-course"]
              for e in _search(clinic, "nurse", f"AdverseEvent?subject=Patient/{p}")]
    assert len(events) == 1 and events[0]["suspectEntity"][0]["instance"]["reference"]
    [esk] = seeded.stages["esketamine"]
    sessions = _search(clinic, "physician", f"Encounter?patient={esk}&status=finished")
    forms = [clinic.read("physician", f"Encounter/{s['id']}/$rems-form") for s in sessions]
    assert sorted(f["status"] for f in forms) == ["completed", "in-progress"]
    notes = [n for p in seeded.patients
             for n in _search(clinic, "therapist", f"DocumentReference?subject=Patient/{p}")]
    kinds = Counter(kind_code(n) for n in notes)
    assert kinds["psychotherapy"] == 1 and kinds["preparation"] >= 3 and kinds["integration"] >= 5
    assert sum(1 for n in notes if n["docStatus"] == "final") >= 8
    assert any(n.get("relatesTo") for n in notes)  # an addendum
    # The psychotherapy note is kept from the physician on the same care team.
    seen = [n for p in seeded.patients
            for n in _search(clinic, "physician", f"DocumentReference?subject=Patient/{p}")]
    assert len(seen) == len(notes) - 1
    assert "psychotherapy" not in {kind_code(n) for n in seen}


def _ledger(seeded: Seeded, clinic: Clinic, engine: Engine) -> None:
    given: Counter[str] = Counter()
    for patient in seeded.patients:
        for dose in _search(clinic, "nurse", f"MedicationAdministration?patient={patient}"):
            lot = dose["contained"][0]["batch"]["lotNumber"]
            given[lot] += Decimal(str(dose["dosage"]["dose"]["value"]))
    with unit_of_work(engine, write=False) as session:
        place = ledger_repository.location(session, LOCATION_ID)
        assert place is not None and place.id is not None
        lots = {lot.lot_number: (lot, balance)
                for lot, balance in ledger_repository.lots(session, place.id)}
        assert set(lots) == {KETAMINE_LOT, ESKETAMINE_LOT}
        for number, (lot, balance) in lots.items():
            assert lot.id is not None
            kinds = ledger_repository.totals_by_kind(session, lot.id)
            received, administered = kinds["receipt"], -kinds["administration"]
            wasted = -kinds.get("waste", Decimal(0))
            assert received - administered - wasted == balance.mg > 0
            assert administered == given[number]
            assert (wasted > 0) == (number == KETAMINE_LOT)
        [count] = ledger_repository.counts(session, place.id, variance_only=True)
    assert count.flag is not None
    flag = clinic.read(None, count.flag)  # about the Location: no care team reads it
    assert flag["status"] == "active"
    assert flag["code"]["coding"][0]["code"] == VARIANCE_KIND
    assert f"variance -{COUNT_SHORTFALL_MG}" in flag["code"]["text"]


def _audit_chain(engine: Engine, settings: Settings) -> None:
    build_pipeline(settings).recorder.settle(engine)
    report = verify_chain(engine, checkpoint_verifier(load_or_create_server_key(settings)))
    assert report.intact, report.summary()
    assert report.records > 1000 and report.pending == 0


def _versions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM resource_version")).scalar_one())


def test_demo_clinic(engine: Engine, settings: Settings, seeded: Seeded,
                     clinic: Clinic) -> None:
    """One seeding per backend (it takes seconds), checked from every side."""
    _stages(seeded, clinic)
    _course_records(seeded, clinic)
    _ledger(seeded, clinic, engine)
    _audit_chain(engine, settings)
    before = _versions(engine)
    assert seed_demo(engine, settings, only_if_empty=True) == \
        "database already holds data: demo not seeded"
    assert _versions(engine) == before
