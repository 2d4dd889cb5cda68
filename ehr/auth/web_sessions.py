"""Web sign-in sessions: an opaque cookie value mapped to a user, server-side.

Kept in the database rather than in a signed cookie so that signing out, disabling a user or a
role change takes effect on the next page, whichever worker serves it. Only a SHA-256 of the
cookie value is stored: a copy of the table does not let anyone sign in. Each session carries
its own CSRF token, which every form must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from ehr.auth.clock import Clock, system_clock, to_micros
from ehr.auth.roles import role_ceiling
from ehr.auth.settings import AuthSettings
from ehr.auth.tables import UserRow
from ehr.auth.users import User
from ehr.context import Actor
from ehr.store.tables import BigKey

# Refresh ``last_seen_at`` at most this often (microseconds): a busy page must not write a row
# on every request.
_TOUCH_EVERY_US = 60 * 1_000_000


class WebSessionRow(SQLModel, table=True):
    __tablename__ = "auth_web_session"
    __table_args__ = (sa.UniqueConstraint("token_hash"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigKey, primary_key=True))
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    username: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    csrf: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    created_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    last_seen_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    ended_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))


@dataclass(frozen=True)
class WebLogin:
    """A live session: who is signed in and the CSRF token their forms must carry."""

    actor: Actor
    csrf: str
    username: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_actor(user: User) -> Actor:
    """The actor of a signed-in user: the full ceiling of their roles, as a token would carry."""
    return Actor(id=user.username, kind="user", display=user.display_name, roles=user.roles,
                 scopes=role_ceiling(user.roles).strings(), practitioner=user.practitioner)


class WebSessions:
    def __init__(self, auth: AuthSettings | None = None, clock: Clock = system_clock) -> None:
        self.auth = auth or AuthSettings()
        self.clock = clock

    def start(self, session: Session, user: User) -> tuple[str, WebLogin]:
        """A new session for ``user`` (already authenticated): the cookie value and the login."""
        token = secrets.token_urlsafe(32)
        now = to_micros(self.clock())
        row = WebSessionRow(token_hash=_digest(token), username=user.username,
                            csrf=secrets.token_urlsafe(24), created_at=now, last_seen_at=now,
                            expires_at=now + to_micros(self.auth.auth_web_absolute_seconds))
        session.add(row)
        session.flush()
        return token, WebLogin(user_actor(user), row.csrf, user.username)

    def resume(self, session: Session, token: str | None) -> WebLogin | None:
        """The login behind a cookie value, or None when unknown, ended, idle or disabled."""
        if not token or len(token) > 128:
            return None
        row = session.exec(select(WebSessionRow).where(
            WebSessionRow.token_hash == _digest(token))).first()
        now = to_micros(self.clock())
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        if now - row.last_seen_at > to_micros(self.auth.auth_web_idle_seconds):
            row.ended_at = now
            session.add(row)
            session.flush()
            return None
        user_row = session.exec(select(UserRow).where(UserRow.username == row.username)).first()
        if user_row is None or not user_row.active:
            return None
        if now - row.last_seen_at > _TOUCH_EVERY_US:
            row.last_seen_at = now
            session.add(row)
            session.flush()
        return WebLogin(user_actor(User.of(user_row)), row.csrf, row.username)

    def end(self, session: Session, token: str | None) -> bool:
        """Sign out: the cookie value stops working at once, on every worker."""
        if not token:
            return False
        row = session.exec(select(WebSessionRow).where(
            WebSessionRow.token_hash == _digest(token))).first()
        if row is None or row.ended_at is not None:
            return False
        row.ended_at = to_micros(self.clock())
        session.add(row)
        session.flush()
        return True

    def end_others(self, session: Session, username: str, keep: str | None) -> int:
        """End every live session of ``username`` but the one behind ``keep`` (after a password
        change, whoever learnt the old password is signed out everywhere); returns how many."""
        kept = _digest(keep) if keep else ""
        now = to_micros(self.clock())
        rows = session.exec(select(WebSessionRow).where(
            WebSessionRow.username == username, col(WebSessionRow.ended_at).is_(None),
            WebSessionRow.token_hash != kept)).all()
        for row in rows:
            row.ended_at = now
            session.add(row)
        session.flush()
        return len(rows)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
