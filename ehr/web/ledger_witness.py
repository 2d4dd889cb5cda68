"""Witness sign-in on a ledger form: a second person types their own user name and password
into the performer's form, and the handler exchanges them for a single-use signing assertion
(action ``ledger-witness``), which the ledger verifies and consumes in the entry's transaction.

Shared by every witnessed form (waste: one witness; destruction: two).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.concurrency import run_in_threadpool

from ehr.audit.events import AccessEvent
from ehr.auth.users import normalise_username
from ehr.clinical.ledger.witnesses import WITNESS_ACTION, WitnessProof
from ehr.context import bind_context
from ehr.db import unit_of_work
from ehr.errors import BadRequest
from ehr.web.ledger_forms import FormErrors
from ehr.web.pages import Page, Pages

WRONG_PASSWORD = "The witness's user name or password is not right. The witness types " \
                 "their own password."


def witness_assertion(pages: Pages, page: Page, username: str, password: str) -> str | None:
    """The witness's signing assertion for this entry; None when the password fails.
    The attempt (and a failure's lockout count) commits before the entry is tried."""
    with bind_context(page.ctx), unit_of_work(pages.engine) as session:
        issued = pages.auth.assertions.issue(session, username, password, WITNESS_ACTION)
        try:
            who = normalise_username(username)
        except BadRequest:
            who = username.strip()[:64]
        pages.pipeline.recorder.record(session, page.ctx, AccessEvent(
            "reauth", status=200 if issued else 403, category="security",
            detail={"action": WITNESS_ACTION, "witness": who, "via": "web"}))
    return issued.assertion if issued else None


def witness_fields(prefix: str, form: Mapping[str, str], errors: FormErrors,
                   label: str = "witness's") -> tuple[str, str]:
    """The user name and password typed under ``<prefix>_username`` / ``<prefix>_password``."""
    username = form.get(f"{prefix}_username", "").strip()
    password = form.get(f"{prefix}_password", "")
    if not username:
        errors.add(f"{prefix}_username", f"Enter the {label} user name.")
    if not password:
        errors.add(f"{prefix}_password", "The witness types their own password here.")
    return username, password


async def signed_in_witnesses(pages: Pages, page: Page, typed: Sequence[tuple[str, str, str]],
                              errors: FormErrors) -> list[WitnessProof] | None:
    """Each ``(prefix, username, password)`` exchanged for a proof; None (with the error next
    to that witness's password) when any sign-in fails."""
    proofs = []
    for prefix, username, password in typed:
        assertion = await run_in_threadpool(witness_assertion, pages, page, username, password)
        if assertion is None:
            errors.add(f"{prefix}_password", WRONG_PASSWORD)
        else:
            proofs.append(WitnessProof(username, assertion))
    return proofs if len(proofs) == len(typed) else None
