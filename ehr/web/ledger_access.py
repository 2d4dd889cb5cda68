"""The controlled-substance ledger as its pages reach it: the ledger's own operations under its
role matrix (``ehr.clinical.ledger.permissions``), each read or write one audited transaction
with an ``operation:ledger-<action>`` record, and what several ledger pages show (the places to
choose from, the entries already recorded).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from ehr.clinical.ledger import permissions
from ehr.clinical.ledger.operations import Done, LedgerOperations, entry_done
from ehr.clinical.ledger.protocol import load_protocol
from ehr.clinical.ledger.tables import EntryRow
from ehr.clinical.ledger.witnesses import WitnessCheck
from ehr.context import RequestContext
from ehr.errors import EhrError
from ehr.fhir.ledger_flags import flag_writer
from ehr.web import ledger_views
from ehr.web.pages import NotPermitted, Page, Pages

T = TypeVar("T")
Work = Callable[[Session, RequestContext], Done[T]]


def ledger_operations(pages: Pages) -> LedgerOperations:
    return LedgerOperations(pages.engine, pages.pipeline.recorder,
                            WitnessCheck(pages.auth.assertions, pages.auth.users),
                            load_protocol(), flag_writer(pages.pipeline))


def recording(record: Callable[[Session, RequestContext], EntryRow],
              location_id: str) -> Work[int]:
    """Work that records one entry at ``location_id``; its value is the new entry's id."""
    def work(session: Session, ctx: RequestContext) -> Done[int]:
        entry = record(session, ctx)
        assert entry.id is not None
        return entry_done(entry, entry.id, location_id)
    return work


@dataclass
class LedgerAccess:
    pages: Pages
    # Why a user may not take an action, in plain words, by the action the page is for.
    role_words: Mapping[str, str]
    ops: LedgerOperations = field(init=False)

    def __post_init__(self) -> None:
        self.ops = ledger_operations(self.pages)

    @property
    def zone(self) -> dt.tzinfo:
        return self.pages.templates.zone

    def may(self, page: Page, action: str) -> bool:
        return permissions.permitted(page.login.actor, action)

    def allowed(self, request: Request, *actions: str) -> Page:
        """The page, if the user's roles permit any of ``actions`` (the first names why not)."""
        page = self.pages.page(request)
        if not any(self.may(page, a) for a in actions):
            raise NotPermitted(self.role_words[actions[0]])
        return page

    def run(self, page: Page, action: str, work: Work[T], query: str | None = None) -> T:
        return self.ops.run(page.ctx, action, work, query)

    async def record(self, page: Page, action: str, work: Work[T],
                     refused: Callable[[EhrError], object]) -> T | None:
        """Run ``work`` off the event loop; a refusal (not a server fault) is handed to
        ``refused`` (to put next to the form's fields) and gives None."""
        try:
            return await run_in_threadpool(self.run, page, action, work)
        except EhrError as err:
            if err.status >= 500:
                raise
            refused(err)
            return None

    def places(self, page: Page) -> list[dict[str, str]]:
        return self.run(page, "location-read", lambda s, c: Done(ledger_views.place_options(s)))

    def recorded(self, page: Page, kind: str) -> list[dict[str, Any]] | None:
        """The entries of ``kind`` for a user who may read the ledger's reports (else None);
        the patients they name are recorded as shown."""
        if not self.may(page, "report"):
            return None
        rows = self.run(page, "report", ledger_views.entries_of(kind))
        shown = [r["patient"].split("/", 1)[1] for r in rows if r["patient"]]
        if shown:
            page.viewed(f"ledger-{kind}", shown)
        return rows
