"""What every page handler needs: the signed-in user, CSRF checks, FHIR calls, rendering.

``Pages`` is built once per app; ``Page`` once per request, after the session cookie has been
resolved, so a handler never sees a request from someone who is not signed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from ehr.audit.events import AccessEvent
from ehr.auth.service import AuthService
from ehr.auth.web_sessions import WebLogin, WebSessions, csrf_matches
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.fhir.api import base_url
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.router import FhirRouter
from ehr.web.fhir_calls import FhirCalls
from ehr.web.templating import Templates

COOKIE = "ehr_session"
# Where each role starts after signing in (the first role in this order wins).
WRONG_PASSWORD = "The password is not correct (or the account is locked). Re-enter your " \
                 "password to sign."
START_PAGES = (("physician", "/patients"), ("nurse", "/patients"), ("therapist", "/patients"),
               ("compliance", "/compliance/audit"), ("admin", "/admin/users"))


class SignInRequired(Exception):
    """No live session: the handler answers with a redirect to the sign-in page."""


class NotPermitted(Exception):
    """The signed-in user's roles do not include this page (403, in plain words)."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


class ShowInstead(Exception):
    """The handler cannot go on (the record is not available, not what the URL says it is):
    the answer is ``response``, already rendered."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass
class Pages:
    engine: Engine
    fhir: FhirRouter
    pipeline: Pipeline
    auth: AuthService
    sessions: WebSessions
    templates: Templates

    def context(self, request: Request, login: WebLogin | None = None) -> RequestContext:
        client = request.client
        base = base_url(request, self.pipeline.settings.base_url)
        kwargs: dict[str, Any] = {}
        if login is not None:
            kwargs["actor"] = login.actor
        return RequestContext(request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
                              source_ip=client.host if client else None,
                              user_agent=request.headers.get("user-agent"), base_url=base,
                              **kwargs)

    def login_of(self, request: Request) -> WebLogin | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        with unit_of_work(self.engine, write=True) as session:
            return self.sessions.resume(session, token)

    def page(self, request: Request, *roles: str, why: str = "") -> Page:
        """The signed-in user's page; given ``roles``, only for a user who holds one of them
        (anyone else gets a 403 page saying ``why``)."""
        login = self.login_of(request)
        if login is None:
            raise SignInRequired()
        page = Page(self, request, login, self.context(request, login))
        if roles and not page.has_role(*roles):
            raise NotPermitted(why)
        return page


@dataclass
class Page:
    pages: Pages
    request: Request
    login: WebLogin
    ctx: RequestContext

    @property
    def fhir(self) -> FhirCalls:
        return FhirCalls(self.pages.fhir, self.ctx)

    @property
    def roles(self) -> frozenset[str]:
        return self.login.actor.roles

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    async def form(self) -> dict[str, str]:
        """The posted form, after checking its CSRF token against the session's."""
        data = await self.request.form()
        values = {k: v for k, v in data.multi_items() if isinstance(v, str)}
        if not csrf_matches(self.login.csrf, values.get("csrf")):
            raise CsrfRefused()
        return values

    def signing_assertion(self, password: str, action: str) -> str | None:
        """A single-use signing assertion for ``action``, bought with the user's re-entered
        password (None: no password, or a wrong one).

        Its own transaction: a wrong password counts toward lockout even if nothing is signed.
        """
        if not password:
            return None
        with unit_of_work(self.pages.engine, write=True) as session:
            issued = self.pages.auth.assertions.issue(session, self.ctx.actor.id, password,
                                                      action=action)
        return issued.assertion if issued else None

    def viewed(self, page: str, patients: Iterable[str] = (), *,
               rtype: str | None = None, rid: str | None = None) -> None:
        """Audit a page that showed patient data (the reads behind it are audited too)."""
        with unit_of_work(self.pages.engine, write=True) as session:
            self.pages.pipeline.recorder.record(session, self.ctx, AccessEvent(
                "ui-view", rtype, rid, patients=tuple(dict.fromkeys(patients)),
                detail={"page": page}, category="ui"))

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.pages.templates.render(
            template, status, user=self.login.actor, csrf=self.login.csrf,
            path=self.request.url.path, **context)

    def redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303)


def start_page(roles: frozenset[str]) -> str:
    for role, url in START_PAGES:
        if role in roles:
            return url
    return "/account"
