"""Shared fixtures: every database test runs once on SQLite and once on PostgreSQL.

PostgreSQL is used when ``EHR_TEST_POSTGRES_URL`` is set or 127.0.0.1:5432 answers; each pytest
process gets a database of its own (created here, dropped at the end) so parallel runs never
share state. Each test starts from empty tables.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ehr_testing import BASE, bearer, wipe  # noqa: F401  (re-exported for tests)
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

import ehr.audit.tables
import ehr.auth.access_tables
import ehr.auth.tables
import ehr.auth.web_sessions
import ehr.clinical.ledger.tables
import ehr.store.export_jobs  # noqa: F401  (all tables on the metadata, for the per-test wipe)
from ehr.config import Settings
from ehr.db import create_db_engine, normalise_url
from ehr.store.migrate import upgrade

SHARED = Path(__file__).resolve().parents[2] / "shared"
FHIR_DATA = SHARED / "fhir-data"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# Property tests judge results, not speed: on a loaded 2-core CI machine a per-example deadline
# only produces flaky failures. Benchmarks measure speed.
hypothesis_settings.register_profile("ehr", deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("ehr")

# The real argon2id everywhere, at a small cost: the production cost (64 MiB, t=3) would spend
# minutes of a CI run hashing the passwords of test users. Password tests set their own costs.
for _name, _value in (("EHR_AUTH_ARGON2_TIME_COST", "1"), ("EHR_AUTH_ARGON2_MEMORY_KIB", "8192"),
                      ("EHR_AUTH_ARGON2_PARALLELISM", "1")):
    os.environ.setdefault(_name, _value)

def _postgres_url() -> str | None:
    url = os.environ.get("EHR_TEST_POSTGRES_URL")
    if url:
        return normalise_url(url)
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return DEFAULT_PG
    except OSError:
        return None


def _backends() -> list[str]:
    wanted = os.environ.get("EHR_TEST_BACKENDS", "sqlite,postgresql").split(",")
    return [b.strip() for b in wanted if b.strip()]


@pytest.fixture(scope="session", autouse=True)
def _server_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One signing key for the whole run: generating an RSA key per app would dominate."""
    from ehr.auth.keys import generate_pem

    path = tmp_path_factory.mktemp("key") / "signing-key.pem"
    path.write_bytes(generate_pem())
    previous = os.environ.get("EHR_AUTH_SIGNING_KEY_FILE")
    os.environ["EHR_AUTH_SIGNING_KEY_FILE"] = str(path)
    yield
    if previous is None:
        os.environ.pop("EHR_AUTH_SIGNING_KEY_FILE", None)
    else:
        os.environ["EHR_AUTH_SIGNING_KEY_FILE"] = previous


@pytest.fixture(scope="session", params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str | None]:
    url = _postgres_url()
    if url is None:
        yield None
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"ehr_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"PostgreSQL at {url} refused CREATE DATABASE: {exc}")
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(
    backend: str, _pg_database: str | None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if backend == "postgresql":
        if _pg_database is None:
            pytest.skip("PostgreSQL not reachable: set EHR_TEST_POSTGRES_URL or start it on :5432")
        return _pg_database
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'ehr.db'}"


@pytest.fixture(scope="session")
def _engine(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    settings = Settings(database_url=database_url, var_dir=tmp_path_factory.mktemp("var"))
    engine = create_db_engine(settings)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_engine: Engine) -> Iterator[Engine]:
    """The backend's engine with every table empty."""
    wipe(_engine)
    yield _engine


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var")


@pytest.fixture
def fhir_data() -> Path:
    if not FHIR_DATA.is_dir():
        pytest.skip(f"shared FHIR test data not found at {FHIR_DATA}")
    return FHIR_DATA


@pytest.fixture
def app(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    from ehr.app import create_app

    return create_app(settings, engine)


@pytest.fixture(scope="session")
def bearer_header():  # type: ignore[no-untyped-def]
    """``bearer(app, subject=..., kind=..., scopes=..., roles=..., practitioner=...)``."""
    return bearer


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """An HTTP client on the app, bound to the test's empty database, authenticated as a
    system client holding every scope (``system/*.cruds``)."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver") as test_client:
        test_client.headers.update({"Accept": "application/fhir+json"})
        test_client.headers.update(
            bearer(app, subject="test-suite", kind="client", scopes="system/*.cruds"))
        yield test_client


FHIR_JSON = {"Content-Type": "application/fhir+json"}
