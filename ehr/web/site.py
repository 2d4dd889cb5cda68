"""Mount the web pages on the app: routers, static files, and how page errors look."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ehr.auth.break_glass import BreakGlass
from ehr.web.account import build_account_router
from ehr.web.admin import build_admin_router
from ehr.web.compliance import build_compliance_router
from ehr.web.eligibility_pages import build_eligibility_router
from ehr.web.ledger_actions import build_ledger_actions_router
from ehr.web.ledger_pages import build_ledger_router
from ehr.web.note_pages import build_note_router
from ehr.web.pages import CsrfRefused, NotPermitted, Pages, ShowInstead, SignInRequired
from ehr.web.patients import build_patient_router
from ehr.web.screening_pages import build_screening_router
from ehr.web.session_pages import build_session_router
from ehr.web.sign_in import build_sign_in_router


def install_web(app: FastAPI, pages: Pages, break_glass: BreakGlass) -> None:
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="static")
    for router in (build_sign_in_router(pages), build_patient_router(pages, break_glass),
                   build_compliance_router(pages, break_glass), build_admin_router(pages)):
        app.include_router(router)
    app.include_router(build_screening_router(pages))
    app.include_router(build_eligibility_router(pages))
    app.include_router(build_ledger_router(pages))
    app.include_router(build_ledger_actions_router(pages))
    app.include_router(build_session_router(pages))
    app.include_router(build_note_router(pages))
    app.include_router(build_account_router(pages))

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(ShowInstead)
    async def show_instead(request: Request, exc: ShowInstead) -> Response:
        return exc.response

    @app.exception_handler(NotPermitted)
    async def not_permitted(request: Request, exc: NotPermitted) -> Response:
        login = pages.login_of(request)
        return pages.templates.render(
            "message.html", 403, user=login.actor if login else None,
            csrf=login.csrf if login else "", path=request.url.path,
            heading="Not available to your role", lines=[str(exc)], back="/")

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return pages.templates.render(
            "message.html", 403, user=None, path=request.url.path,
            heading="Form expired", lines=["This form was not sent from a page of this "
                                           "service, or your session changed. Reload the "
                                           "page and try again."], back="/")
