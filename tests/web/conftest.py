"""Web pages run on the real app with real users who sign in with a password."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ehr.config import Settings


@pytest.fixture
def web_app(engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The real argon2id, with a small cost so sign-ins stay fast.
    monkeypatch.setenv("EHR_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("EHR_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("EHR_AUTH_ARGON2_PARALLELISM", "1")
    from ehr.app import create_app

    return create_app(settings, engine)


@pytest.fixture
def browser(web_app: Any) -> Iterator[TestClient]:
    with TestClient(web_app, follow_redirects=False) as client:
        yield client
