"""Settings, read from the environment with the ``EHR_`` prefix (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHR_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/ehr.db"
    var_dir: Path = Path("var")
    # Absolute base URL used in Location headers and Bundle links when the service sits behind a
    # proxy; when empty it is derived from each request.
    base_url: str = ""
    # IANA zone in which pages show times (stored times stay UTC).
    clinic_timezone: str = "America/New_York"
    # The sign-in cookie is Secure whenever the request came over HTTPS; set this behind a
    # TLS-terminating proxy, where the app itself only sees plain HTTP.
    web_secure_cookies: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    default_page_size: int = 20
    max_page_size: int = 1000
    db_pool_size: int = 10
    db_max_overflow: int = 10
    sqlite_busy_timeout_ms: int = 30_000
    log_level: str = "info"
    # Only for benchmarks and local experiments: every /fhir request then acts as the service
    # itself, with no access control. Never turn this off in a deployment.
    auth_required: bool = True
    # Likewise benchmark-only: measures what the audit trail costs. Off means NO audit record.
    audit_enabled: bool = True
    break_glass_minutes: int = 60
    # Signed audit checkpoints are written automatically after this many records or minutes.
    audit_checkpoint_every_records: int = 10_000
    audit_checkpoint_every_minutes: int = 15
    # PostgreSQL: records are chained by a background sealer within about this many ms of
    # their commit (docs/audit.md); 0 chains them inside each request's transaction, under the
    # chain's lock (serialises requests).
    audit_seal_interval_ms: float = 50
    # Dosing protocol (JSON, see ehr/clinical/dosing/protocol.json); empty: the shipped defaults.
    dosing_protocol_file: Path | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
