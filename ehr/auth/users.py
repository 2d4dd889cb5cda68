"""User accounts: creation, disabling and password authentication with lockout.

Every failed login looks the same from outside: one message, and a password hash is verified
on every path (an unknown user is checked against a dummy hash) so timing does not reveal
whether the username exists, is disabled or is locked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session, select

from ehr.audit.events import AccessEvent
from ehr.auth.clock import Clock, system_clock, to_micros
from ehr.auth.identifiers import normalise_dea, normalise_npi
from ehr.auth.passwords import PasswordHasher, check_password_policy
from ehr.auth.roles import Role, parse_roles
from ehr.auth.settings import AuthSettings
from ehr.auth.tables import UserRow
from ehr.context import RequestContext, current_context
from ehr.errors import BadRequest, Conflict, Issue, NotFound

LOGIN_FAILED = "invalid username or password, or the account is locked or disabled"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_PRACTITIONER = re.compile(r"^Practitioner/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class User:
    """A user as the rest of the code sees it (never the password hash)."""

    id: int
    username: str
    display_name: str
    roles: frozenset[str]
    active: bool
    practitioner: str | None
    npi: str | None
    dea: str | None
    locked_until: int | None  # microseconds since the epoch

    @classmethod
    def of(cls, row: UserRow) -> User:
        assert row.id is not None
        return cls(row.id, row.username, row.display_name, row.role_names(), row.active,
                   row.practitioner, row.npi, row.dea, row.locked_until)


class EventRecorder(Protocol):
    """Where security events go: ``ehr.audit.recorder.AuditRecorder`` (the pipeline's)."""

    def record(self, session: Session, ctx: RequestContext, event: AccessEvent) -> None:
        """Queue an audit record on the session; it commits with the session."""


# Why a login was refused: for the audit trail only, never for the caller.
UNKNOWN_USER = "unknown user"
WRONG_PASSWORD = "wrong password"
DISABLED = "disabled"
LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    user: User | None  # None: refused, for a reason deliberately not told

    @property
    def ok(self) -> bool:
        return self.user is not None


@dataclass(frozen=True)
class _Attempt:
    """What a login attempt came to, the reason included: for the audit trail only."""

    user: User | None
    reason: str | None = None  # one of the constants above, when refused
    locked_now: bool = False  # this failure locked the account


def normalise_username(username: str) -> str:
    value = username.strip().lower()
    if not _USERNAME.match(value):
        raise BadRequest("username must be 2-64 characters: letters, digits, . _ @ -")
    return value


def hasher_from(auth: AuthSettings) -> PasswordHasher:
    return PasswordHasher(time_cost=auth.auth_argon2_time_cost,
                          memory_kib=auth.auth_argon2_memory_kib,
                          parallelism=auth.auth_argon2_parallelism)


def _links(roles: Iterable[str], practitioner: str | None, npi: str | None,
           dea: str | None) -> dict[str, str | None]:
    """Practitioner, NPI and DEA checked together; every problem is named with its field."""
    problems: list[Issue] = []
    out: dict[str, str | None] = {"practitioner": practitioner or None, "npi": None, "dea": None}
    if practitioner and not _PRACTITIONER.match(practitioner):
        problems.append(Issue("value", "practitioner must be a reference like "
                                       "'Practitioner/123'", "error", ("practitioner",)))
    physician = Role.PHYSICIAN in set(roles)
    for name, value, normalise in (("npi", npi, normalise_npi), ("dea", dea, normalise_dea)):
        if not value:
            continue
        if not physician:
            problems.append(Issue("value", "NPI and DEA numbers are recorded for physicians "
                                           "only", "error", (name,)))
            continue
        try:
            out[name] = normalise(value)
        except BadRequest as err:
            problems.append(Issue("value", err.diagnostics, "error", (name,)))
    if problems:
        raise BadRequest(issues=problems)
    return out


class Users:
    """The user service; methods flush, the caller commits."""

    def __init__(self, auth: AuthSettings | None = None, hasher: PasswordHasher | None = None,
                 clock: Clock = system_clock, recorder: EventRecorder | None = None) -> None:
        self.auth = auth or AuthSettings()
        self.hasher = hasher or hasher_from(self.auth)
        self.clock = clock
        self.recorder = recorder

    def create(self, session: Session, *, username: str, password: str, roles: Iterable[str],
               display_name: str = "", practitioner: str | None = None,
               npi: str | None = None, dea: str | None = None) -> User:
        name = normalise_username(username)
        role_set = parse_roles(roles)
        check_password_policy(password, min_length=self.auth.auth_min_password_length)
        links = _links(role_set, practitioner, npi, dea)
        if self._row(session, name) is not None:
            raise Conflict(f"user {name!r} already exists")
        now = to_micros(self.clock())
        row = UserRow(username=name, display_name=(display_name.strip() or name)[:200],
                      roles=" ".join(sorted(role_set)), active=True,
                      practitioner=links["practitioner"], npi=links["npi"], dea=links["dea"],
                      password_hash=self.hasher.hash(password), failed_attempts=0,
                      created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        return User.of(row)

    def get(self, session: Session, username: str) -> User | None:
        row = self._row(session, username.strip().lower())
        return User.of(row) if row is not None else None

    def list(self, session: Session) -> list[User]:
        rows = session.exec(select(UserRow).order_by(UserRow.username)).all()
        return [User.of(r) for r in rows]

    def set_active(self, session: Session, username: str, active: bool) -> User:
        return self._change(session, username, active=active)

    def set_practitioner(self, session: Session, username: str, practitioner: str) -> User:
        """Link the user to its Practitioner resource (``Practitioner/<id>``)."""
        if not _PRACTITIONER.match(practitioner):
            raise BadRequest("practitioner must be a reference like 'Practitioner/123'")
        return self._change(session, username, practitioner=practitioner)

    def set_roles(self, session: Session, username: str, roles: Iterable[str]) -> User:
        """Replace the user's roles (at least one). Tokens already issued keep their scopes
        until they expire; new sign-ins get the new roles."""
        role_set = parse_roles(roles)
        current = self.get(session, username)
        if current is None:
            raise NotFound(f"no user {username!r}")
        if (current.npi or current.dea) and Role.PHYSICIAN not in role_set:
            raise BadRequest("NPI and DEA numbers are recorded for physicians only: clear "
                             "them before removing the physician role", expression=("role",))
        return self._change(session, username, roles=" ".join(sorted(role_set)))

    def set_links(self, session: Session, username: str, *, practitioner: str | None,
                  npi: str | None, dea: str | None) -> User:
        """Set or clear (None) the linked Practitioner, NPI and DEA number, checked as at
        creation against the user's current roles."""
        current = self.get(session, username)
        if current is None:
            raise NotFound(f"no user {username!r}")
        return self._change(session, username,
                            **_links(current.roles, practitioner, npi, dea))

    def _change(self, session: Session, username: str, **values: Any) -> User:
        row = self._row(session, username.strip().lower())
        if row is None:
            raise NotFound(f"no user {username!r}")
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = to_micros(self.clock())
        session.add(row)
        session.flush()
        return User.of(row)

    def set_password(self, session: Session, username: str, password: str) -> None:
        row = self._row(session, username.strip().lower())
        if row is None:
            raise NotFound(f"no user {username!r}")
        check_password_policy(password, min_length=self.auth.auth_min_password_length)
        row.password_hash = self.hasher.hash(password)
        row.failed_attempts = 0
        row.locked_until = None
        row.updated_at = to_micros(self.clock())
        session.add(row)
        session.flush()

    def authenticate(self, session: Session, username: str, password: str,
                     ctx: RequestContext | None = None) -> LoginResult:
        """Check a password; counts failures and locks the account after too many.

        Returns a refusal rather than raising, so the caller can commit the failure count. With
        a recorder, each refusal (and a lockout) is audited on the same session, so the record
        commits with the failure count; ``ctx`` defaults to the bound request context.
        """
        attempt = self._attempt(session, username, password)
        if attempt.user is None and self.recorder is not None:
            self._audit_refusal(session, ctx or current_context(), username, attempt)
        return LoginResult(attempt.user)

    def _attempt(self, session: Session, username: str, password: str) -> _Attempt:
        name = username.strip().lower()
        row = self._row(session, name, for_update=True) if _USERNAME.match(name) else None
        if row is None:
            self.hasher.verify_dummy(password)
            return _Attempt(None, UNKNOWN_USER)
        now = to_micros(self.clock())
        password_ok = self.hasher.verify(password, row.password_hash)
        if row.locked_until is not None:
            if row.locked_until > now:
                # Attempts while locked neither count nor extend the lock: a stranger guessing
                # must not be able to keep a clinician out indefinitely.
                return _Attempt(None, LOCKED)
            row.locked_until = None
            row.failed_attempts = 0
        if not row.active:
            return _Attempt(None, DISABLED)
        if not password_ok:
            row.failed_attempts += 1
            locked = row.failed_attempts >= self.auth.auth_lockout_attempts
            if locked:
                row.locked_until = now + to_micros(self.auth.auth_lockout_seconds)
            session.add(row)
            session.flush()
            return _Attempt(None, WRONG_PASSWORD, locked_now=locked)
        if row.failed_attempts or self.hasher.needs_rehash(row.password_hash):
            row.failed_attempts = 0
            if self.hasher.needs_rehash(row.password_hash):
                row.password_hash = self.hasher.hash(password)
            session.add(row)
            session.flush()
        return _Attempt(User.of(row))

    def _audit_refusal(self, session: Session, ctx: RequestContext, username: str,
                       result: _Attempt) -> None:
        assert self.recorder is not None
        # The attempted name, never the password; cut short because anything may be typed.
        detail = {"username": username.strip()[:64], "reason": result.reason}
        self.recorder.record(session, ctx, AccessEvent(
            "login-failed", status=401, detail=detail, category="security"))
        if result.locked_now:
            self.recorder.record(session, ctx, AccessEvent(
                "lockout", status=401, detail={
                    "username": username.strip().lower()[:64],
                    "attempts": self.auth.auth_lockout_attempts,
                    "seconds": self.auth.auth_lockout_seconds},
                category="security"))

    @staticmethod
    def _row(session: Session, username: str, *, for_update: bool = False) -> UserRow | None:
        stmt = select(UserRow).where(UserRow.username == username)
        if for_update:
            # Concurrent wrong guesses on PostgreSQL must each count.
            stmt = stmt.with_for_update()
        return session.exec(stmt).first()
