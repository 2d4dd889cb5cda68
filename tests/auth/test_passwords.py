from __future__ import annotations

import pytest

from ehr.auth.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, check_password_policy
from ehr.errors import BadRequest


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_kib=8 * 1024, parallelism=1)


def test_hash_is_argon2id_and_verifies(hasher: PasswordHasher) -> None:
    digest = hasher.hash("a long enough passphrase")
    assert digest.startswith("$argon2id$")
    assert "a long enough passphrase" not in digest
    assert hasher.verify("a long enough passphrase", digest)
    assert not hasher.verify("a long enough passphrasE", digest)


def test_same_password_hashes_differently(hasher: PasswordHasher) -> None:
    assert hasher.hash("a long enough passphrase") != hasher.hash("a long enough passphrase")


def test_malformed_hash_refuses_instead_of_crashing(hasher: PasswordHasher) -> None:
    assert not hasher.verify("whatever password", "not-a-hash")
    assert not hasher.verify("x" * (MAX_PASSWORD_LENGTH + 1), hasher.hash("y" * 12))


def test_dummy_verification_is_always_false(hasher: PasswordHasher) -> None:
    assert hasher.verify_dummy("dummy password for absent users") is False


def test_needs_rehash_when_cost_changes(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(time_cost=2, memory_kib=8 * 1024, parallelism=1)
    digest = hasher.hash("a long enough passphrase")
    assert not hasher.needs_rehash(digest)
    assert stronger.needs_rehash(digest)


@pytest.mark.parametrize("password", ["", "short", "elevenchars", " " * 20,
                                      "x" * (MAX_PASSWORD_LENGTH + 1)])
def test_policy_refuses(password: str) -> None:
    with pytest.raises(BadRequest):
        check_password_policy(password, min_length=12)


def test_policy_accepts_twelve_characters() -> None:
    check_password_policy("twelve chars", min_length=12)
    with pytest.raises(BadRequest, match="at least 16"):
        check_password_policy("twelve chars", min_length=16)
