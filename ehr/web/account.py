"""Every signed-in user's own account page: who they are to the service, and a password change.

Changing a password asks for the current one, checked like a sign-in (a wrong one counts toward
the lockout and is audited as a failed login), so a session left open on a shared screen is not
enough to take the account over. The change ends the user's other web sessions and is audited
as ``password-changed``; the passwords themselves are never recorded or echoed back.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.passwords import check_password_policy
from ehr.db import unit_of_work
from ehr.errors import EhrError
from ehr.web.pages import COOKIE, Page, Pages

WRONG_CURRENT = "That is not your current password."


def _policy_problem(password: str, min_length: int) -> str | None:
    """What the password policy says against ``password`` (checked before the current password
    is, so a bad new one costs no password check and no failed attempt)."""
    try:
        check_password_policy(password, min_length=min_length)
    except EhrError as err:
        text = err.diagnostics
        return text[:1].upper() + text[1:] + "."
    return None


def build_account_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    users = pages.auth.users
    min_length = users.auth.auth_min_password_length

    def account_page(page: Page, status: int = 200, *, fields: dict[str, str] | None = None,
                     notice: str | None = None) -> Response:
        with unit_of_work(pages.engine) as session:
            user = users.get(session, page.login.username)
        return page.render("account.html", status, account=user, min_length=min_length,
                           errors={"fields": fields or {}, "general": []}, form={},
                           notice=notice)

    @router.get("/account")
    def account(request: Request, done: str = "") -> Response:
        page = pages.page(request)
        notice = None
        if done == "password":
            notice = "Password changed. Your other sign-ins have been ended."
        return account_page(page, notice=notice)

    @router.post("/account/password")
    async def change_password(request: Request) -> Response:
        page = pages.page(request)
        form = await page.form()
        current, new = form.get("current", ""), form.get("password", "")
        fields: dict[str, str] = {}
        if not current:
            fields["current"] = "Enter your current password."
        if len(new) < min_length:
            fields["password"] = f"A password needs at least {min_length} characters."
        elif (policy := _policy_problem(new, min_length)) is not None:
            fields["password"] = policy
        elif new == current:
            fields["password"] = "Choose a password different from the current one."
        elif form.get("password2", "") != new:
            fields["password2"] = "The two passwords differ: type the same one twice."
        if fields:
            return await run_in_threadpool(account_page, page, 422, fields=fields)

        def change() -> dict[str, str]:
            username = page.login.username
            # The check's failure count and audit record commit on their own, whatever follows.
            with unit_of_work(pages.engine, write=True) as session:
                checked = users.authenticate(session, username, current, page.ctx)
            if checked.user is None:
                return {"current": WRONG_CURRENT}
            with unit_of_work(pages.engine, write=True) as session:
                users.set_password(session, username, new)
                ended = pages.sessions.end_others(session, username,
                                                  request.cookies.get(COOKIE))
                pages.pipeline.recorder.record(session, page.ctx, AccessEvent(
                    "password-changed", category="security",
                    detail={"username": username, "other_sessions_ended": ended}))
            return {}

        problems = await run_in_threadpool(change)
        if problems:
            return await run_in_threadpool(account_page, page, 422, fields=problems)
        return page.redirect("/account?done=password")

    return router
