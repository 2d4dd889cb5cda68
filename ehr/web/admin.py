"""Administration pages: users and roles, system clients, care-team membership.

Administrators never see clinical data; a care-team change is written by the service on their
behalf and audited under their name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.roles import ROLES
from ehr.context import SYSTEM
from ehr.db import unit_of_work
from ehr.errors import EhrError
from ehr.fhir.care_team_admin import (
    Participant,
    add_to_care_team,
    care_team_participants,
    remove_from_care_team,
)
from ehr.web.admin_users import add_user_account_routes
from ehr.web.pages import Page, Pages


def build_admin_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    users, clients = pages.auth.users, pages.auth.clients

    def admin(request: Request) -> Page:
        return pages.page(request, "admin", why="Administration is for administrators.")

    def audited(page: Page, interaction: str, action: Callable[[Any], Any], *,
                patients: tuple[str, ...] = (), **detail: Any) -> Any:
        with unit_of_work(pages.engine, write=True) as session:
            result = action(session)
            pages.pipeline.recorder.record(session, page.ctx, AccessEvent(
                interaction, status=200, category="security", patients=patients,
                detail=detail))
            return result

    def users_page(page: Page, status: int = 200, **extra: Any) -> Response:
        with unit_of_work(pages.engine) as session:
            listed = users.list(session)
        return page.render("admin_users.html", status, users=listed, roles=sorted(ROLES),
                           errors=extra.pop("errors", {}), form=extra.pop("form", {}), **extra)

    @router.get("/admin/users")
    def user_list(request: Request) -> Response:
        return users_page(admin(request))

    @router.post("/admin/users")
    async def user_create(request: Request) -> Response:
        page = admin(request)
        data = await page.request.form()
        await page.form()
        form = {k: v for k, v in data.items() if isinstance(v, str)}
        roles = [v for v in data.getlist("role") if isinstance(v, str)]
        errors: dict[str, str] = {}
        if not form.get("username", "").strip():
            errors["username"] = "Enter a user name."
        if not roles:
            errors["role"] = "Choose at least one role."
        if errors:
            return users_page(page, 422, errors=errors, form=form)

        def create(session: Any) -> Any:
            return users.create(session, username=form["username"], roles=roles,
                                password=form.get("password", ""),
                                display_name=form.get("display_name", ""),
                                npi=form.get("npi") or None, dea=form.get("dea") or None)

        try:
            created = await run_in_threadpool(audited, page, "user-created", create,
                                              username=form["username"].strip().lower(),
                                              roles=sorted(roles))
        except EhrError as err:
            field = next((e for i in err.issues for e in i.expression), "password") \
                if err.issues else "password"
            return users_page(page, err.status, errors={field: err.diagnostics}, form=form)
        return users_page(page, messages=[{"kind": "ok",
                                           "text": f"Created user {created.username}."}])

    # Before the enable/disable route below, whose path would swallow theirs.
    add_user_account_routes(router, pages, admin, audited)

    @router.post("/admin/users/{username}/{state}")
    async def user_state(request: Request, username: str, state: str) -> Response:
        page = admin(request)
        await page.form()
        if state not in ("enable", "disable"):
            return users_page(page, 404)
        try:
            await run_in_threadpool(
                audited, page, f"user-{state}d",
                lambda s: users.set_active(s, username, state == "enable"), username=username)
        except EhrError as err:
            return users_page(page, err.status, messages=[{"kind": "error",
                                                           "text": err.diagnostics}])
        return page.redirect("/admin/users")

    @router.get("/admin/clients")
    def client_list(request: Request) -> Response:
        page = admin(request)
        with unit_of_work(pages.engine) as session:
            listed = clients.list(session)
        return page.render("admin_clients.html", clients=listed)

    @router.post("/admin/clients/{client_id}/disable")
    async def client_disable(request: Request, client_id: str) -> Response:
        page = admin(request)
        await page.form()
        try:
            await run_in_threadpool(audited, page, "client-disabled",
                                    lambda s: clients.set_active(s, client_id, False),
                                    client_id=client_id)
        except EhrError as err:
            return page.render("message.html", err.status, heading="Not changed",
                               lines=[err.diagnostics], back="/admin/clients")
        return page.redirect("/admin/clients")

    def as_service(page: Page) -> Any:
        # Administrators hold no clinical permissions: the service reads and writes the
        # CareTeam resources, and the audit record names the administrator who asked.
        return replace(page.ctx, actor=SYSTEM)

    def participants(page: Page, patient: str) -> list[Participant]:
        return audited(page, "care-team-viewed", lambda s: care_team_participants(
            pages.pipeline, s, as_service(page), users, patient), patients=(patient,),
            patient=patient)

    def teams_page(page: Page, status: int = 200, *, form: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, messages: list[dict[str, str]] | None
                   = None) -> Response:
        form = dict(form or {})
        patient = form.get("patient", "").strip().removeprefix("Patient/")
        errors = dict(errors or {})
        members = None
        if patient and not {"patient", "add_patient"} & errors.keys():
            try:
                members = participants(page, patient)
            except EhrError as err:
                errors["patient"] = err.diagnostics
        return page.render("admin_care_teams.html", status, form=form, errors=errors,
                           patient=patient, members=members, messages=messages or [])

    @router.get("/admin/care-teams")
    def care_teams(request: Request, patient: str = "") -> Response:
        return teams_page(admin(request), form={"patient": patient})

    @router.post("/admin/care-teams/remove")
    async def care_team_remove(request: Request) -> Response:
        page = admin(request)
        form = await page.form()
        patient = form.get("patient", "").strip().removeprefix("Patient/")
        member = form.get("member", "").strip()
        if not member:
            return await run_in_threadpool(teams_page, page, 422, form=form,
                                           errors={"member": "Choose whom to remove."})
        try:
            teams = await run_in_threadpool(
                audited, page, "care-team-member-removed",
                lambda s: remove_from_care_team(pages.pipeline, s, as_service(page), users,
                                                patient, member),
                patients=(patient,), patient=patient, member=member)
        except EhrError as err:
            field = "member" if "member" in (err.issues[0].expression if err.issues else ()) \
                else "patient"
            return await run_in_threadpool(teams_page, page, err.status, form=form,
                                           errors={field: err.diagnostics})
        changed = ", ".join(teams)
        return await run_in_threadpool(teams_page, page, form={"patient": patient}, messages=[
            {"kind": "ok", "text": f"{member} was removed from the care team of "
                                   f"Patient/{patient} ({changed})."}])

    @router.post("/admin/care-teams")
    async def care_team_add(request: Request) -> Response:
        page = admin(request)
        form = await page.form()
        patient, username = form.get("patient", "").strip(), form.get("username", "").strip()

        def add(session: Any) -> str:
            return add_to_care_team(pages.pipeline, session, as_service(page),
                                    users, patient.removeprefix("Patient/"), username)

        try:
            team = await run_in_threadpool(audited, page, "care-team-member-added", add,
                                           patient=patient, username=username)
        except EhrError as err:
            field = "username" if "user" in err.diagnostics else "add_patient"
            return await run_in_threadpool(teams_page, page, err.status, form=form,
                                           errors={field: err.diagnostics})
        return await run_in_threadpool(teams_page, page, form={"patient": patient}, messages=[
            {"kind": "ok", "text": f"{username} is on the care team of Patient/{patient} "
                                   f"(CareTeam/{team})."}])

    return router
