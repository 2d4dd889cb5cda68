"""One user's account page for administrators: roles, linked Practitioner/NPI/DEA, and a
temporary password.

Each change goes through the user service (``ehr.auth.users.Users``), which checks it as at
creation, and is audited in the same transaction under the administrator's name, with the same
``user-*`` interactions as the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.auth.roles import ROLES
from ehr.auth.users import User
from ehr.db import unit_of_work
from ehr.errors import EhrError
from ehr.web.pages import Page, Pages, ShowInstead

FIELDS = ("role", "practitioner", "npi", "dea", "password", "password2")


class Audited(Protocol):
    def __call__(self, page: Page, interaction: str, action: Callable[[Any], Any],
                 **detail: Any) -> Any: ...


def field_errors(err: EhrError, default: str) -> dict[str, str]:
    """A refusal's issues by form field (an issue naming no known field goes to ``default``)."""
    errors: dict[str, str] = {}
    for issue in err.issues:
        name = next((e for e in issue.expression if e in FIELDS), default)
        text = issue.diagnostics[:1].upper() + issue.diagnostics[1:]
        errors[name] = f"{errors[name]} {text}" if name in errors else text
    return errors


def add_user_account_routes(router: APIRouter, pages: Pages, admin: Callable[[Request], Page],
                            audited: Audited) -> None:
    """Register the routes; call before any ``/admin/users/{username}/{...}`` catch-all."""
    users = pages.auth.users
    min_length = users.auth.auth_min_password_length

    def account(username: str) -> User | None:
        with unit_of_work(pages.engine) as session:
            return users.get(session, username)

    def account_page(page: Page, user: User, status: int = 200, *,
                     errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                     notice: str | None = None) -> Response:
        values = {"practitioner": user.practitioner or "", "npi": user.npi or "",
                  "dea": user.dea or "", **(form or {})}
        return page.render("admin_user.html", status, account=user, roles=sorted(ROLES),
                           errors=errors or {}, form=values, notice=notice,
                           min_length=min_length)

    def missing(page: Page, username: str) -> Response:
        return page.render("message.html", 404, heading="No such user",
                           lines=[f"There is no user {username!r}."], back="/admin/users")

    async def posted(request: Request, username: str) -> tuple[Page, dict[str, str], User]:
        """The administrator's page, their posted form and the account it is about."""
        page = admin(request)
        form = await page.form()
        user = await run_in_threadpool(account, username)
        if user is None:
            raise ShowInstead(missing(page, username))
        return page, form, user

    async def changed(page: Page, user: User, interaction: str, action: Callable[[Any], Any],
                      field: str, done: str, form: dict[str, str] | None = None,
                      **detail: Any) -> Response:
        """Make the change, audited as ``interaction``; a refusal goes next to ``field``."""
        try:
            await run_in_threadpool(audited, page, interaction, action,
                                    username=user.username, **detail)
        except EhrError as err:
            return account_page(page, user, err.status, form=form,
                                errors=field_errors(err, field))
        return page.redirect(f"/admin/users/{user.username}?done={done}")

    @router.get("/admin/users/{username}")
    def user_page(request: Request, username: str, done: str = "") -> Response:
        page = admin(request)
        user = account(username)
        if user is None:
            return missing(page, username)
        return account_page(page, user, notice=NOTICES.get(done))

    @router.post("/admin/users/{username}/roles")
    async def change_roles(request: Request, username: str) -> Response:
        page, _, user = await posted(request, username)
        data = await page.request.form()
        roles = sorted({v for v in data.getlist("role") if isinstance(v, str)})
        problem = None
        if not roles:
            problem = "Choose at least one role."
        elif user.username == page.ctx.actor.id and "admin" not in roles:
            problem = "You cannot remove your own admin role: ask another administrator."
        if problem:
            return account_page(page, user, 422, errors={"role": problem})
        return await changed(page, user, "user-roles-changed",
                             lambda s: users.set_roles(s, user.username, roles), "role", "roles",
                             roles=roles, previous=sorted(user.roles))

    @router.post("/admin/users/{username}/links")
    async def change_links(request: Request, username: str) -> Response:
        page, form, user = await posted(request, username)
        links = {k: form.get(k, "").strip() or None for k in ("practitioner", "npi", "dea")}
        return await changed(page, user, "user-links-changed",
                             lambda s: users.set_links(s, user.username, **links),
                             "practitioner", "links", form, **links)

    @router.post("/admin/users/{username}/password")
    async def reset_password(request: Request, username: str) -> Response:
        page, form, user = await posted(request, username)
        password = form.get("password", "")
        errors: dict[str, str] = {}
        if len(password) < min_length:
            errors["password"] = f"A temporary password needs at least {min_length} " \
                                 "characters."
        elif form.get("password2", "") != password:
            errors["password2"] = "The two passwords differ: type the same one twice."
        if errors:
            return account_page(page, user, 422, errors=errors)
        # The password itself is never recorded, only that it was reset.
        return await changed(page, user, "user-password-reset",
                             lambda s: users.set_password(s, user.username, password),
                             "password", "password")


NOTICES = {"roles": "Roles changed. Pages follow them at once; API tokens already issued keep "
                    "their scopes until they expire.",
           "links": "Practitioner, NPI and DEA number saved.",
           "password": "Temporary password set and any lockout cleared. Give it to the user "
                       "in person."}
