"""Therapist pages: my notes, a patient's notes, the note editor, signing, addenda, withdrawal.

Every change goes through the FHIR write path as the signed-in user, exactly as an API client
would make it: a draft is a DocumentReference POST/PUT, a signature is ``$sign`` with the
single-use assertion the re-entered password buys, a withdrawal is ``$entered-in-error``. The
notes feature (``ehr.clinical.notes``) decides who may do what; these pages offer only the
buttons that can work and put the server's refusals next to the field they concern.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr import instants
from ehr.clinical.notes import kinds
from ehr.clinical.notes.signing import CORRECTOR_ROLES, REVIEWER_ROLES, SIGNING_ACTION
from ehr.db import unit_of_work
from ehr.store.repository import creator_of
from ehr.web import note_views as nv
from ehr.web.fhir_calls import FhirResult
from ehr.web.note_actions import add_note_actions, note_grantees
from ehr.web.pages import WRONG_PASSWORD, NotPermitted, Page, Pages
from ehr.web.patients import CLINICIANS, identifier_of, patient_name

WRITERS = ("therapist", "physician")
NOTE = "DocumentReference"
RECENT_SIGNED = 20
LOCKED = "This note is signed or marked entered in error, so it can no longer be changed. " \
         "Add an addendum instead."
NOTICES = {"saved": "Draft saved.", "signed": "Signed. The note is now locked.",
           "withdrawn": "Marked entered in error. The original stays readable below.",
           "created": "Draft created. Save your changes, then sign when it is complete.",
           "reviewed": "Review signed.", "shared": "Access granted.",
           "unshared": "Access revoked."}


def build_note_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def clinician(request: Request) -> Page:
        return pages.page(request, *CLINICIANS, why="Notes are for clinicians.")

    def writer(request: Request) -> Page:
        return pages.page(request, *WRITERS, why="Notes are written by therapists and "
                                                 "physicians.")

    def authors(rids: list[str]) -> dict[str, str | None]:
        # The author is whoever wrote version 1 (recorded by the write path, not the body).
        with unit_of_work(pages.engine) as session:
            return {rid: creator_of(session, NOTE, rid) for rid in rids}

    def now() -> str:
        return instants.instant(pages.pipeline.clock())

    def unavailable(page: Page, status: int, what: str = "Note") -> Response:
        return page.render("message.html", status if status >= 400 else 404,
                           heading=f"{what} not available",
                           lines=[f"This {what.lower()} does not exist or is not yours to see."],
                           back="/notes")

    def patient_of(page: Page, pid: str) -> dict[str, Any] | None:
        found = page.fhir.get(f"Patient/{pid}")
        if not found.ok:
            return None
        return {"id": pid, "name": patient_name(found.body),
                "identifier": identifier_of(found.body)}

    def listed(found: FhirResult) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Note summaries of a search, and the names of the patients it included."""
        names = {str(r.get("id")): patient_name(r) for r in found.entries()
                 if r.get("resourceType") == "Patient"}
        notes = [nv.summary(r) for r in found.entries()
                 if r.get("resourceType") == NOTE and kinds.is_note(r)]
        return notes, names

    # -- lists ------------------------------------------------------------------------------

    @router.get("/notes")
    def my_notes(request: Request, done: str = "") -> Response:
        page = writer(request)
        actor = page.ctx.actor
        query = [("_sort", "-date"), ("_count", "200"), ("_include", "DocumentReference:subject")]
        if actor.practitioner:
            query.append(("author", actor.practitioner))
        else:
            query.append(("type", ",".join(f"{kinds.NOTE_KIND_SYSTEM}|{k}"
                                           for k in kinds.NOTE_KINDS)))
        found = page.fhir.search(NOTE, query)
        notes, names = listed(found)
        written = authors([n["id"] for n in notes])
        mine = [n for n in notes if written.get(n["id"]) == actor.id]
        ordinary, psychotherapy = nv.split_notes(mine)
        page.viewed("my-notes", [n["patient"] for n in mine if n["patient"]])
        return page.render(
            "note_list.html", heading="My notes", patient=None, names=names,
            drafts=[n for n in ordinary if n["state"] == "draft"],
            finished=[n for n in ordinary if n["state"] != "draft"][:RECENT_SIGNED],
            psychotherapy=psychotherapy, problems=found.problems(),
            notice=NOTICES.get(done))

    @router.get("/patients/{pid}/notes")
    def patient_notes(request: Request, pid: str) -> Response:
        page = clinician(request)
        patient = patient_of(page, pid)
        if patient is None:
            return unavailable(page, 404, "Patient")
        found = page.fhir.search(NOTE, [("patient", pid), ("_sort", "-date"), ("_count", "200")])
        notes, _ = listed(found)
        ordinary, psychotherapy = nv.split_notes(notes)
        page.viewed("patient-notes", [pid], rtype="Patient", rid=pid)
        return page.render(
            "note_list.html", heading=f"Notes for {patient['name']}", patient=patient,
            names={pid: patient["name"]}, drafts=[n for n in ordinary if n["state"] == "draft"],
            finished=[n for n in ordinary if n["state"] != "draft"], psychotherapy=psychotherapy,
            problems=found.problems(), kinds=nv.OFFERED_KINDS, kind_label=nv.kind_label,
            may_write=page.has_role(*WRITERS), notice=None)

    # -- new notes and addenda --------------------------------------------------------------

    def editor(page: Page, patient: dict[str, Any], kind: str, action: str, status: int = 200,
               *, text: str = "", errors: dict[str, str] | None = None,
               original: dict[str, Any] | None = None) -> Response:
        page.viewed("note-new", [patient["id"]], rtype="Patient", rid=patient["id"])
        return page.render("note_new.html", status, patient=patient, kind=kind,
                           kind_label=nv.kind_label(kind), action=action, text=text,
                           errors=errors or {}, original=original,
                           psychotherapy=kinds.NOTE_KINDS[kind].psychotherapy)

    @router.get("/patients/{pid}/notes/new")
    def new_note(request: Request, pid: str, kind: str = "integration") -> Response:
        page = writer(request)
        if kind not in kinds.NOTE_KINDS:
            kind = "integration"
        patient = patient_of(page, pid)
        if patient is None:
            return unavailable(page, 404, "Patient")
        return editor(page, patient, kind, f"/patients/{pid}/notes?kind={kind}")

    @router.post("/patients/{pid}/notes")
    async def create_note(request: Request, pid: str, kind: str = "integration") -> Response:
        page = writer(request)
        form = await page.form()
        return await run_in_threadpool(create, page, pid, kind, form.get("text", ""), None)

    def create(page: Page, pid: str, kind: str, text: str,
               original: dict[str, Any] | None) -> Response:
        if kind not in kinds.NOTE_KINDS:
            raise NotPermitted("Unknown kind of note.")
        patient = patient_of(page, pid)
        if patient is None:
            return unavailable(page, 404, "Patient")
        action = f"/notes/{original['id']}/addendum" if original else \
            f"/patients/{pid}/notes?kind={kind}"
        if not text.strip():
            return editor(page, patient, kind, action, 422, text=text, original=original,
                          errors={"text": "Write the note before saving it."})
        body = nv.note_body(kind, pid, page.ctx.actor, text, now(),
                            appends=original["id"] if original else None)
        result = page.fhir.post(NOTE, body)
        if not result.ok:
            if result.status == 403:
                raise NotPermitted(" ".join(result.problems()) or "You may not write this note.")
            return editor(page, patient, kind, action, result.status, text=text,
                          original=original, errors={"text": " ".join(result.problems()) or (
                              f"The note was refused ({result.status}).")})
        return page.redirect(f"/notes/{result.body.get('id')}?done=created")

    @router.get("/notes/{rid}/addendum")
    def new_addendum(request: Request, rid: str) -> Response:
        page = writer(request)
        found = page.fhir.get(f"{NOTE}/{rid}")
        if not found.ok or not kinds.is_note(found.body):
            return unavailable(page, found.status)
        original = nv.summary(found.body)
        patient = patient_of(page, original["patient"] or "")
        if patient is None:
            return unavailable(page, 404, "Patient")
        return editor(page, patient, original["kind"], f"/notes/{rid}/addendum",
                      original=original)

    @router.post("/notes/{rid}/addendum")
    async def create_addendum(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()

        def run() -> Response:
            found = page.fhir.get(f"{NOTE}/{rid}")
            if not found.ok or not kinds.is_note(found.body):
                return unavailable(page, found.status)
            original = nv.summary(found.body)
            return create(page, original["patient"] or "", original["kind"],
                          form.get("text", ""), original)
        return await run_in_threadpool(run)

    # -- one note ---------------------------------------------------------------------------

    def show(page: Page, rid: str, status: int = 200, *, errors: dict[str, str] | None = None,
             text: str | None = None, notice: str | None = None) -> Response:
        found = page.fhir.get(f"{NOTE}/{rid}")
        if not found.ok or not kinds.is_note(found.body):
            return unavailable(page, found.status)
        note = nv.summary(found.body)
        patient = patient_of(page, note["patient"] or "") or {
            "id": note["patient"], "name": f"Patient/{note['patient']}", "identifier": ""}
        original = None
        if note["appends"]:
            parent = page.fhir.get(f"{NOTE}/{note['appends']}")
            original = nv.summary(parent.body) if parent.ok else None
        addenda_found = page.fhir.search(NOTE, [("relatesto", f"{NOTE}/{rid}"),
                                                ("_sort", "date"), ("_count", "100")])
        addenda = [nv.summary(r) for r in addenda_found.entries()
                   if r.get("resourceType") == NOTE and kinds.is_note(r)]
        refs = ",".join(f"{NOTE}/{n}" for n in [rid, *(a["id"] for a in addenda)])
        provenances = [r for r in page.fhir.search("Provenance", [
            ("target", refs), ("_count", "200")]).entries()
            if r.get("resourceType") == "Provenance"]
        for addendum in addenda:
            addendum["signatures"] = nv.signatures(provenances, addendum["id"])
            addendum["withdrawals"] = nv.withdrawals(provenances, addendum["id"])
        author = authors([rid]).get(rid)
        me = page.ctx.actor.id
        roles = set(page.roles)
        mine_draft = note["state"] == "draft" and author == me
        page.viewed("note", [p for p in [note["patient"]] if p], rtype=NOTE, rid=rid)
        return page.render(
            "note_view.html", status, note=note, patient=patient, original=original,
            addenda=addenda, signatures=nv.signatures(provenances, rid),
            withdrawals=nv.withdrawals(provenances, rid), errors=errors or {},
            text=note["text"] if text is None else text, notice=notice,
            may_edit=mine_draft, others_draft=note["state"] == "draft" and author != me,
            may_addend=note["state"] == "signed" and bool(roles & REVIEWER_ROLES),
            may_withdraw=note["state"] != "entered-in-error" and (
                author == me or (note["state"] == "signed" and bool(roles & CORRECTOR_ROLES))),
            may_review=note["state"] == "signed" and author != me and bool(
                roles & REVIEWER_ROLES),
            may_share=note["psychotherapy"] and author == me,
            grantees=note_grantees(pages, rid) if note["psychotherapy"] and author == me
            else [])

    @router.get("/notes/{rid}")
    def view_note(request: Request, rid: str, done: str = "") -> Response:
        page = clinician(request)
        return show(page, rid, notice=NOTICES.get(done))

    def save(page: Page, rid: str, version: str, text: str) -> tuple[FhirResult | None, str]:
        """PUT the draft with new text; the result (None: nothing changed) and its version."""
        found = page.fhir.get(f"{NOTE}/{rid}")
        if not found.ok:
            return found, version
        if nv.note_text(found.body) == text:
            return None, str((found.body.get("meta") or {}).get("versionId") or version)
        result = page.fhir.put(f"{NOTE}/{rid}", {**nv.edited_body(found.body, text), "id": rid},
                               headers={"If-Match": f'W/"{version}"'} if version else None)
        return result, str((result.body.get("meta") or {}).get("versionId") or version)

    def refused(page: Page, rid: str, result: FhirResult, text: str, field: str) -> Response:
        if result.status == 404:
            return unavailable(page, 404)
        if result.status == 403:
            raise NotPermitted(" ".join(result.problems()) or "Only the note's author may "
                               "change a draft.")
        if result.status == 409:
            message = LOCKED
        elif result.status == 412:
            message = "The note changed since you opened it. Check the text and try again."
        else:
            message = " ".join(result.problems()) or f"Refused ({result.status})."
        return show(page, rid, result.status, errors={field: message}, text=text)

    @router.post("/notes/{rid}")
    async def edit_note(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()
        text = form.get("text", "")
        signing = form.get("action") == "sign"

        def run() -> Response:
            if not text.strip():
                return show(page, rid, 422, text=text,
                            errors={"text": "The note is empty. Write the note first."})
            result, version = save(page, rid, form.get("version", ""), text)
            if result is not None and not result.ok:
                return refused(page, rid, result, text, "text")
            if not signing:
                return page.redirect(f"/notes/{rid}?done=saved")
            return sign(page, rid, version, form.get("password", ""), text)
        return await run_in_threadpool(run)

    def sign(page: Page, rid: str, version: str, password: str, text: str) -> Response:
        if not password:
            return show(page, rid, 422, text=text, notice=None, errors={
                "password": "Re-enter your password to sign the note."})
        assertion = page.signing_assertion(password, SIGNING_ACTION)
        if assertion is None:
            return show(page, rid, 422, text=text, errors={"password": WRONG_PASSWORD})
        result = page.fhir.post(f"{NOTE}/{rid}/$sign", {"resourceType": "Parameters",
                                                        "parameter": [
            {"name": "meaning", "valueCode": "authored"},
            {"name": "assertion", "valueString": assertion}]},
            headers={"If-Match": f'W/"{version}"'} if version else None)
        if not result.ok:
            if result.status == 403 and any("assertion" in p for p in result.problems()):
                return show(page, rid, 403, text=text, errors={"password": WRONG_PASSWORD})
            return refused(page, rid, result, text, "sign")
        signed = next((p.get("resource") for p in result.body.get("parameter") or []
                       if p.get("name") == "note"), None) or {}
        parent = kinds.appended_targets(signed)
        if parent:
            return page.redirect(f"/notes/{parent[0]}?done=signed#note-{rid}")
        return page.redirect(f"/notes/{rid}?done=signed")

    @router.post("/notes/{rid}/entered-in-error")
    async def withdraw(request: Request, rid: str) -> Response:
        page = writer(request)
        form = await page.form()
        reason = form.get("reason", "").strip()

        def run() -> Response:
            if not reason:
                return show(page, rid, 422, errors={
                    "reason": "Give the reason this note is in error."})
            result = page.fhir.post(f"{NOTE}/{rid}/$entered-in-error", {
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": reason}]})
            if not result.ok:
                if result.status == 409:
                    return show(page, rid, 409, errors={
                        "reason": "This note is already marked entered in error."})
                if result.status == 403:
                    return show(page, rid, 403, errors={"reason": " ".join(
                        result.problems()) or "You may not withdraw this note."})
                return refused(page, rid, result, "", "reason")
            return page.redirect(f"/notes/{rid}?done=withdrawn")
        return await run_in_threadpool(run)

    add_note_actions(router, pages, writer, show)
    return router
