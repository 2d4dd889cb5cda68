"""Settings of the identity layer, read from the environment with the ``EHR_`` prefix.

Kept apart from ``ehr.config.Settings`` so the auth package owns its knobs; both read the same
environment and ``.env`` file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHR_", env_file=".env", extra="ignore")

    # PEM private key (EC P-256 -> ES256, RSA -> RS256). Empty: generated under var_dir/auth/.
    auth_signing_key_file: Path | None = None
    auth_token_ttl_seconds: int = 15 * 60
    # How long a process trusts that the account behind a valid token is still active
    # (``account_status``): disabling an account ends its tokens within this many seconds.
    auth_account_check_seconds: float = 5
    auth_reauth_ttl_seconds: int = 5 * 60
    # SMART Backend Services: a client assertion may not expire further ahead than this.
    auth_assertion_max_lifetime_seconds: int = 5 * 60
    # Tolerated clock difference with clients for `iat`/`nbf` in their assertions.
    auth_clock_skew_seconds: int = 30
    auth_lockout_attempts: int = 5
    auth_lockout_seconds: int = 15 * 60
    auth_min_password_length: int = 12
    # Web sign-in: an idle session ends after this long (HIPAA automatic logoff); a session
    # never outlives the absolute limit, however busy (a long clinic day).
    auth_web_idle_seconds: int = 30 * 60
    auth_web_absolute_seconds: int = 12 * 60 * 60
    # Argon2id cost; the defaults follow RFC 9106's second recommended option (64 MiB, t=3).
    auth_argon2_time_cost: int = 3
    auth_argon2_memory_kib: int = 64 * 1024
    auth_argon2_parallelism: int = 4
