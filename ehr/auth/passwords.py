"""Password hashing: the only module that knows passlib (argon2 scheme), so it can be swapped.

The bcrypt backend of passlib is broken with bcrypt 5, hence argon2 only.
"""

from __future__ import annotations

from functools import cached_property

from passlib.context import CryptContext

from ehr.errors import BadRequest

# Long enough for passphrases, short enough that hashing cannot be used to burn CPU.
MAX_PASSWORD_LENGTH = 1024


class PasswordHasher:
    """Hashes and verifies passwords with argon2id."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 64 * 1024,
                 parallelism: int = 4) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__time_cost=time_cost,
            argon2__memory_cost=memory_kib,
            argon2__parallelism=parallelism,
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the user does not exist, so both paths cost the same. Made on
        # first use: an argon2 hash costs ~150 ms, too much for every process start.
        return str(self._context.hash("dummy password for absent users"))

    def hash(self, password: str) -> str:
        return str(self._context.hash(password))

    def verify(self, password: str, password_hash: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return bool(self._context.verify(password, password_hash))
        except (ValueError, TypeError):
            # A malformed stored hash must refuse the login, not crash it.
            return False

    def verify_dummy(self, password: str) -> bool:
        """Spend the time of a real verification; always False."""
        self.verify(password, self._dummy_hash)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return bool(self._context.needs_update(password_hash))
        except (ValueError, TypeError):
            return True


def check_password_policy(password: str, *, min_length: int = 12) -> None:
    """Refuse passwords that are too short (or absurdly long); length is what matters most."""
    if len(password) < min_length:
        raise BadRequest(f"password must be at least {min_length} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if password.strip() == "":
        raise BadRequest("password must not be blank")
