"""Two note actions beyond writing: a colleague's review signature, and the author's sharing of
a psychotherapy note with a named user.

"Review and sign" is ``$sign`` with meaning ``reviewed`` (a physician or therapist on the
patient's care team, not the author, on a signed note), paid for with the reviewer's password
like the author's signature. Sharing is ``$grant-access`` / ``$revoke-access``, which only the
author of a psychotherapy note may call. Both run as the signed-in user through the FHIR router,
so the notes feature's rules and audit apply unchanged; refusals go next to the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.clinical.notes import sharing
from ehr.clinical.notes.signing import SIGNING_ACTION
from ehr.db import unit_of_work
from ehr.errors import BadRequest
from ehr.store.repository import creator_of
from ehr.web.fhir_calls import FhirResult
from ehr.web.pages import Page, Pages

NOTE = "DocumentReference"
WRONG_PASSWORD = "The password is not correct (or the account is locked). Re-enter your " \
                 "password to sign the review."
Show = Callable[..., Response]


def note_grantees(pages: Pages, rid: str) -> list[str]:
    """The users, other than its author, who may read a psychotherapy note."""
    with unit_of_work(pages.engine) as session:
        author = creator_of(session, NOTE, rid)
        return sorted(sharing.note_readers(session, rid) - {author or ""})


def _parameters(**values: str) -> dict[str, Any]:
    return {"resourceType": "Parameters",
            "parameter": [{"name": k, "valueString": v} for k, v in values.items()]}


def _problem(result: FhirResult, fallback: str) -> str:
    return " ".join(result.problems()) or fallback


def add_note_actions(router: APIRouter, pages: Pages, writer: Callable[[Request], Page],
                     show: Show) -> None:
    users = pages.auth.users

    @router.post("/notes/{rid}/review")
    async def review(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()
        return await run_in_threadpool(review_signed, page, rid, form.get("version", ""),
                                       form.get("review_password", ""))

    def review_signed(page: Page, rid: str, version: str, password: str) -> Response:
        if not password:
            return show(page, rid, 422, errors={
                "review_password": "Re-enter your password to sign the review."})
        assertion = page.signing_assertion(password, SIGNING_ACTION)
        if assertion is None:
            return show(page, rid, 422, errors={"review_password": WRONG_PASSWORD})
        result = page.fhir.post(
            f"{NOTE}/{rid}/$sign",
            {"resourceType": "Parameters", "parameter": [
                {"name": "meaning", "valueCode": "reviewed"},
                {"name": "assertion", "valueString": assertion}]},
            headers={"If-Match": f'W/"{version}"'} if version else None)
        if result.ok:
            return page.redirect(f"/notes/{rid}?done=reviewed")
        if result.status == 404:
            return show(page, rid, 404)
        if result.status == 403 and any("assertion" in p for p in result.problems()):
            return show(page, rid, 403, errors={"review_password": WRONG_PASSWORD})
        if result.status == 412:
            message = "The note changed since you opened it. Read it again, then sign."
        else:
            message = _problem(result, f"The review was refused ({result.status}).")
        return show(page, rid, result.status, errors={"review": message})

    def active_user(name: str) -> str | None:
        """The user name if it names an active user (else None)."""
        try:
            with unit_of_work(pages.engine) as session:
                user = users.get(session, name)
        except BadRequest:
            return None
        return user.username if user is not None and user.active else None

    @router.post("/notes/{rid}/grant")
    async def grant(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()
        name, reason = form.get("grant_user", "").strip(), form.get("grant_reason", "").strip()

        def run() -> Response:
            errors: dict[str, str] = {}
            grantee = active_user(name) if name else None
            if not name:
                errors["grant_user"] = "Enter the user name of the person to share with."
            elif grantee is None:
                errors["grant_user"] = f"There is no active user named {name!r}."
            elif grantee == page.ctx.actor.id:
                errors["grant_user"] = "You wrote this note: you can read it already."
            if not reason:
                errors["grant_reason"] = "Give the reason (the patient's authorization)."
            if errors or grantee is None:
                return show(page, rid, 422, errors=errors)
            result = page.fhir.post(f"{NOTE}/{rid}/$grant-access",
                                    _parameters(user=grantee, reason=reason))
            if not result.ok:
                if result.status == 404:
                    return show(page, rid, 404)
                return show(page, rid, result.status, errors={"grant_user": _problem(
                    result, f"Sharing was refused ({result.status}).")})
            return page.redirect(f"/notes/{rid}?done=shared")
        return await run_in_threadpool(run)

    @router.post("/notes/{rid}/revoke")
    async def revoke(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()
        name = form.get("revoke_user", "").strip().lower()

        def run() -> Response:
            if not name:
                return show(page, rid, 422, errors={
                    "revoke_user": "Choose whose access to end."})
            result = page.fhir.post(f"{NOTE}/{rid}/$revoke-access", _parameters(user=name))
            if not result.ok:
                if result.status == 404:
                    return show(page, rid, 404)
                return show(page, rid, result.status, errors={"revoke_user": _problem(
                    result, f"Ending access was refused ({result.status}).")})
            if any(i.get("diagnostics", "").startswith("0 grant") for i in result.issues()):
                return show(page, rid, 422, errors={
                    "revoke_user": f"{name} had no access to this note."})
            return page.redirect(f"/notes/{rid}?done=unshared")
        return await run_in_threadpool(run)
