"""Fixtures for the identity layer: cheap argon2, a clock tests move, real keys."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from auth.signing import FHIR_BASE, FakeClock
from ehr.auth.keys import ServerKey, server_key_from_pem
from ehr.auth.service import AuthService
from ehr.auth.settings import AuthSettings
from ehr.auth.tokens import ServerUrls
from ehr.config import Settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_settings() -> AuthSettings:
    # The real argon2id, with a small cost so the suite stays fast.
    return AuthSettings(auth_argon2_time_cost=1, auth_argon2_memory_kib=8 * 1024,
                        auth_argon2_parallelism=1)


def _pem(private: Any) -> bytes:
    return bytes(private.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@pytest.fixture(scope="session")
def server_key() -> ServerKey:
    # RSA like the key the server generates for itself; ES256 is covered in test_keys.py.
    return server_key_from_pem(_pem(rsa.generate_private_key(public_exponent=65537,
                                                             key_size=2048)))


@pytest.fixture
def urls() -> ServerUrls:
    return ServerUrls.for_fhir_base(FHIR_BASE)


@pytest.fixture
def service(engine: Engine, settings: Settings, auth_settings: AuthSettings,
            server_key: ServerKey, clock: FakeClock) -> AuthService:
    return AuthService.create(engine, settings, key=server_key, auth=auth_settings, clock=clock)


