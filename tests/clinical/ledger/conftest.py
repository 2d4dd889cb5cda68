"""A registered location with staff who can witness, per test."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from clinical.ledger.stock import Stock, make_stock
from ehr.auth.service import AuthService
from ehr.auth.settings import AuthSettings
from ehr.config import Settings


@pytest.fixture
def auth(engine: Engine, settings: Settings) -> AuthService:
    # The real argon2id at a small cost: tests create users and re-authenticate often.
    cheap = AuthSettings(auth_argon2_time_cost=1, auth_argon2_memory_kib=8 * 1024,
                         auth_argon2_parallelism=1)
    return AuthService.create(engine, settings, auth=cheap)


@pytest.fixture
def stock(engine: Engine, settings: Settings, auth: AuthService) -> Stock:
    return make_stock(engine, settings, auth)
