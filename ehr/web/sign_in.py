"""Sign-in, sign-out and the landing page of each role."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.web_sessions import user_actor
from ehr.db import unit_of_work
from ehr.web.pages import COOKIE, Pages, start_page

# The same words whatever went wrong: an unknown user, a wrong password, a disabled or a
# locked account must look alike to whoever is guessing.
SIGN_IN_FAILED = ("Sign-in failed: check the user name and password. After {attempts} failed "
                  "attempts an account is locked for {minutes} minutes; ask an administrator "
                  "if you are locked out.")


def build_sign_in_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    auth = pages.auth.auth

    def failed_message() -> str:
        return SIGN_IN_FAILED.format(attempts=auth.auth_lockout_attempts,
                                     minutes=auth.auth_lockout_seconds // 60)

    @router.get("/")
    def landing(request: Request) -> Response:
        login = pages.login_of(request)
        if login is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(start_page(login.actor.roles), status_code=303)

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if pages.login_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        return pages.templates.render("login.html", error=None, username="")

    @router.post("/login")
    async def login(request: Request, username: Annotated[str, Form()] = "",
                    password: Annotated[str, Form()] = "") -> Response:
        ctx = pages.context(request)

        def attempt() -> tuple[str | None, frozenset[str]]:
            with unit_of_work(pages.engine, write=True) as session:
                result = pages.auth.users.authenticate(session, username, password, ctx)
                if result.user is None:
                    return None, frozenset()
                token, web = pages.sessions.start(session, result.user)
                pages.pipeline.recorder.record(
                    session, replace(ctx, actor=user_actor(result.user)),
                    AccessEvent("login", category="security", detail={"via": "web"}))
                return token, web.actor.roles

        if not username.strip() or not password:
            return pages.templates.render("login.html", 400, username=username,
                                          error="Enter your user name and password.")
        token, roles = await run_in_threadpool(attempt)
        if token is None:
            return pages.templates.render("login.html", 401, username=username,
                                          error=failed_message())
        response = RedirectResponse(start_page(roles), status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https" or pages.pipeline.settings.web_secure_cookies)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        login = pages.login_of(request)
        form = await request.form()
        # A cross-site form must not be able to sign a clinician out mid-session.
        if login is not None and form.get("csrf") == login.csrf:
            ctx = pages.context(request, login)

            def end() -> None:
                with unit_of_work(pages.engine, write=True) as session:
                    pages.sessions.end(session, token)
                    pages.pipeline.recorder.record(session, ctx, AccessEvent(
                        "logout", category="security", detail={"via": "web"}))

            await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
