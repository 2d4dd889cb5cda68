"""A clinic per test: an eligible patient under a session and an order, with stock on hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from clinical.dosing.world import HOUR, MINUTE, Clinic
from ehr.config import Settings
from ehr.instants import now_us


@pytest.fixture
def clinic(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Clinic]:
    from ehr_testing import bearer

    from ehr.app import create_app

    # The real argon2id at a small cost: each test creates users and re-authenticates.
    monkeypatch.setenv("EHR_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("EHR_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("EHR_AUTH_ARGON2_PARALLELISM", "1")
    app = create_app(settings, engine)
    with TestClient(app, base_url="http://testserver") as http:
        http.headers.update(bearer(app, subject="test-suite", kind="client",
                                   scopes="system/*.cruds"))
        world = Clinic(app, http, engine)
        for role in ("physician", "nurse", "therapist"):
            world.user(role)
        world.patient = world.make_patient()
        world.make_eligible(world.patient)
        world.make_location_and_lot()
        world.encounter = world.make_session(world.patient)
        yield world


@pytest.fixture
def now() -> int:
    return now_us()


@pytest.fixture
def ready(clinic: Clinic, now: int) -> str:
    """Normal vitals 15 minutes before ``now``; returns a 70 kg weight taken 2 hours ago."""
    clinic.vitals(now - 15 * MINUTE)
    return clinic.weight(70, now - 2 * HOUR)
