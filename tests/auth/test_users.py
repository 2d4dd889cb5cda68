from __future__ import annotations

import pytest
from sqlalchemy import Engine

from auth.signing import STRONG_PASSWORD, FakeClock
from ehr.auth.passwords import PasswordHasher
from ehr.auth.settings import AuthSettings
from ehr.auth.users import LOGIN_FAILED, Users
from ehr.db import unit_of_work
from ehr.errors import BadRequest, Conflict, NotFound


class CountingHasher(PasswordHasher):
    """The real hasher, counting how often a password is actually checked."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=8 * 1024, parallelism=1)
        self.verifications = 0

    def verify(self, password: str, password_hash: str) -> bool:
        self.verifications += 1
        return super().verify(password, password_hash)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def users(auth_settings: AuthSettings, hasher: CountingHasher, clock: FakeClock) -> Users:
    return Users(auth_settings, hasher, clock)


def _create(engine: Engine, users: Users, username: str = "alice", **kw: object) -> None:
    with unit_of_work(engine) as s:
        users.create(s, username=username, password=STRONG_PASSWORD,
                     roles=kw.pop("roles", ["physician"]), **kw)  # type: ignore[arg-type]


def _login(engine: Engine, users: Users, username: str, password: str) -> bool:
    with unit_of_work(engine) as s:
        return users.authenticate(s, username, password).ok


def test_create_and_authenticate(engine: Engine, users: Users) -> None:
    _create(engine, users, "Alice", display_name="Dr Alice Smith",
            practitioner="Practitioner/abc", npi="1234567893")
    with unit_of_work(engine) as s:
        result = users.authenticate(s, "alice", STRONG_PASSWORD)
    assert result.user is not None
    assert result.user.username == "alice"
    assert result.user.roles == {"physician"}
    assert result.user.display_name == "Dr Alice Smith"
    assert result.user.practitioner == "Practitioner/abc"
    assert result.user.npi == "1234567893"


@pytest.mark.parametrize("kw,error", [
    ({"password": "too short"}, BadRequest),
    ({"roles": ["surgeon"]}, BadRequest),
    ({"roles": ["nurse"], "npi": "1234567893"}, BadRequest),
    ({"npi": "1234567890"}, BadRequest),
    ({"practitioner": "Patient/1"}, BadRequest),
    ({"username": "a b"}, BadRequest),
])
def test_create_refuses(engine: Engine, users: Users, kw: dict[str, object],
                        error: type[Exception]) -> None:
    args: dict[str, object] = {"username": "bob", "password": STRONG_PASSWORD,
                               "roles": ["physician"], **kw}
    with pytest.raises(error), unit_of_work(engine) as s:
        users.create(s, **args)  # type: ignore[arg-type]


def test_duplicate_username(engine: Engine, users: Users) -> None:
    _create(engine, users, "alice")
    with pytest.raises(Conflict):
        _create(engine, users, "ALICE")


def test_lockout_after_five_failures_then_unlock(engine: Engine, users: Users,
                                                 clock: FakeClock,
                                                 auth_settings: AuthSettings) -> None:
    _create(engine, users)
    for _ in range(auth_settings.auth_lockout_attempts - 1):
        assert not _login(engine, users, "alice", "wrong password!!")
    assert _login(engine, users, "alice", STRONG_PASSWORD)  # success resets the count
    for _ in range(auth_settings.auth_lockout_attempts):
        assert not _login(engine, users, "alice", "wrong password!!")
    with unit_of_work(engine) as s:
        user = users.get(s, "alice")
    assert user is not None and user.locked_until is not None
    # Locked: even the right password is refused.
    assert not _login(engine, users, "alice", STRONG_PASSWORD)
    clock.advance(auth_settings.auth_lockout_seconds - 1)
    assert not _login(engine, users, "alice", STRONG_PASSWORD)
    clock.advance(2)
    assert _login(engine, users, "alice", STRONG_PASSWORD)


def test_lockout_window_is_configurable(engine: Engine, hasher: CountingHasher,
                                        clock: FakeClock) -> None:
    users = Users(AuthSettings(auth_lockout_attempts=2, auth_lockout_seconds=60), hasher, clock)
    _create(engine, users)
    assert not _login(engine, users, "alice", "wrong password!!")
    assert not _login(engine, users, "alice", "wrong password!!")
    assert not _login(engine, users, "alice", STRONG_PASSWORD)
    clock.advance(61)
    assert _login(engine, users, "alice", STRONG_PASSWORD)


def test_unknown_user_and_wrong_password_look_the_same(engine: Engine, users: Users,
                                                       hasher: CountingHasher) -> None:
    _create(engine, users)
    before = hasher.verifications
    with unit_of_work(engine) as s:
        unknown = users.authenticate(s, "nobody", "wrong password!!")
    after_unknown = hasher.verifications
    with unit_of_work(engine) as s:
        wrong = users.authenticate(s, "alice", "wrong password!!")
    after_wrong = hasher.verifications
    assert unknown == wrong  # both are the same refusal, nothing distinguishes them
    assert not unknown.ok
    # Both paths spend exactly one argon2 verification.
    assert after_unknown - before == 1
    assert after_wrong - after_unknown == 1
    assert "password" in LOGIN_FAILED and "username" in LOGIN_FAILED


def test_locked_and_disabled_also_spend_a_verification(engine: Engine, users: Users,
                                                      hasher: CountingHasher) -> None:
    _create(engine, users)
    with unit_of_work(engine) as s:
        users.set_active(s, "alice", False)
    before = hasher.verifications
    assert not _login(engine, users, "alice", STRONG_PASSWORD)
    assert hasher.verifications - before == 1


def test_disable_unknown_user(engine: Engine, users: Users) -> None:
    with pytest.raises(NotFound), unit_of_work(engine) as s:
        users.set_active(s, "ghost", False)


def test_set_password_clears_lock(engine: Engine, users: Users,
                                  auth_settings: AuthSettings) -> None:
    _create(engine, users)
    for _ in range(auth_settings.auth_lockout_attempts):
        _login(engine, users, "alice", "wrong password!!")
    with unit_of_work(engine) as s:
        users.set_password(s, "alice", "another long passphrase")
    assert _login(engine, users, "alice", "another long passphrase")


def test_set_roles_replaces_them_and_needs_at_least_one(engine: Engine, users: Users) -> None:
    _create(engine, users, "alice", roles=["nurse"])
    with unit_of_work(engine) as s:
        changed = users.set_roles(s, "Alice", ["therapist", "physician"])
    assert changed.roles == {"therapist", "physician"}
    with unit_of_work(engine) as s:
        stored = users.get(s, "alice")
    assert stored is not None and stored.roles == {"therapist", "physician"}
    for roles in ([], ["surgeon"]):
        with pytest.raises(BadRequest), unit_of_work(engine) as s:
            users.set_roles(s, "alice", roles)
    with pytest.raises(NotFound), unit_of_work(engine) as s:
        users.set_roles(s, "ghost", ["nurse"])


def test_physician_role_stays_while_an_npi_or_dea_is_recorded(engine: Engine,
                                                              users: Users) -> None:
    _create(engine, users, "alice", npi="1234567893")
    with pytest.raises(BadRequest) as refused, unit_of_work(engine) as s:
        users.set_roles(s, "alice", ["nurse"])
    assert refused.value.issues[0].expression == ("role",)
    with unit_of_work(engine) as s:
        users.set_links(s, "alice", practitioner=None, npi=None, dea=None)
        assert users.set_roles(s, "alice", ["nurse"]).roles == {"nurse"}


def test_set_links_validates_like_creation_and_clears(engine: Engine, users: Users) -> None:
    _create(engine, users, "alice")
    _create(engine, users, "nora", roles=["nurse"])
    with unit_of_work(engine) as s:
        linked = users.set_links(s, "alice", practitioner="Practitioner/p1",
                                 npi=" 1234567893 ", dea="ab1234563")
    assert (linked.practitioner, linked.npi, linked.dea) == \
        ("Practitioner/p1", "1234567893", "AB1234563")
    with pytest.raises(BadRequest) as refused, unit_of_work(engine) as s:
        users.set_links(s, "alice", practitioner="Patient/1", npi="1234567890",
                        dea="AB1234564")
    assert [i.expression for i in refused.value.issues] == \
        [("practitioner",), ("npi",), ("dea",)]
    with pytest.raises(BadRequest) as nurse, unit_of_work(engine) as s:
        users.set_links(s, "nora", practitioner=None, npi="1234567893", dea=None)
    assert nurse.value.issues[0].expression == ("npi",)
    with unit_of_work(engine) as s:
        cleared = users.set_links(s, "alice", practitioner=None, npi=None, dea=None)
    assert (cleared.practitioner, cleared.npi, cleared.dea) == (None, None, None)
