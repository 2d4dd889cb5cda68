"""The ledger's count-variance Flag, stored through the one write path as the service itself.

The ledger (``ehr.clinical.ledger``) cannot reach the write path, so the API and the web pages
hand it this store: the Flag is written in the count's own transaction with the request's
context but the ``SYSTEM`` actor (the person counting may not hold Flag-create rights, and the
Flag must exist whatever their role); its audit record shares the count's request id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlmodel import Session

from ehr.clinical.ledger.operations import FlagStore
from ehr.context import SYSTEM, RequestContext
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer


def flag_writer(pipeline: Pipeline) -> FlagStore:
    def store(session: Session, ctx: RequestContext, flag: dict[str, Any]) -> str:
        outcome = Writer(pipeline, session, replace(ctx, actor=SYSTEM)).create("Flag", flag)
        assert outcome.stored is not None
        return f"Flag/{outcome.stored.rid}"

    return store
