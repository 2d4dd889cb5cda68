"""Who is acting, from where, under which request id.

The request context travels in a context variable so that lower layers (the store, the audit
trail) learn the actor without importing the web framework or the auth package.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """The authenticated party: a user, a system client, or the service itself."""

    id: str
    kind: str = "system"  # "user" | "client" | "system" | "anonymous"
    display: str = ""
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    practitioner: str | None = None


SYSTEM = Actor(id="ehr", kind="system", display="ehr service")


@dataclass(frozen=True)
class RequestContext:
    actor: Actor = SYSTEM
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source_ip: str | None = None
    user_agent: str | None = None
    purpose_of_use: str = "TREAT"
    base_url: str = ""


_DEFAULT = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("ehr_request_context", default=None)


def current_context() -> RequestContext:
    return _current.get() or _DEFAULT


@contextmanager
def bind_context(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
