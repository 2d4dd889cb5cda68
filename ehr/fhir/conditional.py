"""Conditional matching (If-None-Exist, conditional update/delete, conditional references)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from sqlmodel import Session

from ehr.context import RequestContext
from ehr.errors import BadRequest, PreconditionFailed
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.search import parse_search
from ehr.store.repository import StoredResource, get_current_by_pks, lock_key
from ehr.store.search_sql import matching_pks


def find_matches(
    pipeline: Pipeline,
    session: Session,
    ctx: RequestContext,
    rtype: str,
    query: str,
    *,
    serialize: bool = False,
) -> list[StoredResource]:
    """At most two matches: enough to tell none, one and several apart.

    ``serialize`` is for conditional writes: under READ COMMITTED two requests with the same
    criteria would both see "no match" and both create, so they take turns on a lock keyed by
    the type and the sorted criteria, and the second then sees the first one's resource.
    """
    query = query.split("?", 1)[1] if "?" in query else query
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise BadRequest("A conditional request needs search criteria", code="invalid")
    if serialize:
        lock_key(session, repr((rtype, sorted(params))))
    request = parse_search(
        rtype, params, strict=True,
        default_count=pipeline.settings.default_page_size,
        max_count=pipeline.settings.max_page_size,
    )
    restriction = pipeline.guard.restriction(session, ctx, rtype)
    pks = matching_pks(session, rtype, request.criteria, limit=2, restriction=restriction)
    return get_current_by_pks(session, pks)


def find_one(
    pipeline: Pipeline,
    session: Session,
    ctx: RequestContext,
    rtype: str,
    query: str,
    what: str,
    *,
    serialize: bool = False,
) -> StoredResource | None:
    """The single match of a conditional interaction, None for no match; several are 412."""
    matches = find_matches(pipeline, session, ctx, rtype, query, serialize=serialize)
    if len(matches) > 1:
        raise PreconditionFailed(f"{what} matched several {rtype} resources ({query})",
                                 code="multiple-matches")
    return matches[0] if matches else None
