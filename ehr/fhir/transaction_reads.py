"""GET and HEAD entries of a transaction or batch: the REST read handlers, answered in-Bundle."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ehr.errors import outcome_of
from ehr.fhir import canonical_json, interactions
from ehr.fhir.interactions import Exchange
from ehr.fhir.reader import REDISCLOSURE_HEADER, REDISCLOSURE_ISSUE
from ehr.fhir.transaction_entries import Entry


def status_line(status: int) -> str:
    """``Bundle.entry.response.status`` text: the code and its reason phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def read_entry(ex: Exchange, entry: Entry) -> dict[str, Any]:
    """Run a read, vread, search or history entry through the REST handlers.

    ``ex.request`` is the entry's own GET (its path, parameters and If-None-Match), so
    ``_summary``/``_elements``, paging and conditional reads behave as over HTTP.
    """
    assert entry.rtype is not None
    if entry.kind == "read":
        assert entry.rid is not None
        reply = interactions.read(ex, entry.rtype, entry.rid)
    elif entry.kind == "vread":
        assert entry.rid is not None and entry.vid is not None
        reply = interactions.vread(ex, entry.rtype, entry.rid, entry.vid)
    elif entry.kind == "search-type":
        reply = interactions.search(ex, entry.rtype, ex.search_params())
    else:
        reply = interactions.history(ex, entry.rtype, entry.rid)
    response: dict[str, Any] = {"status": status_line(reply.status)}
    if "ETag" in reply.headers:
        response["etag"] = reply.headers["ETag"]
    out: dict[str, Any] = {}
    if reply.body and entry.method == "GET":
        resource = canonical_json.loads(reply.body)
        last = (resource.get("meta") or {}).get("lastUpdated")
        if last and entry.kind in ("read", "vread"):
            response["lastModified"] = last
            out["fullUrl"] = f"{ex.base.rstrip('/')}/{entry.rtype}/{resource.get('id')}"
        out["resource"] = resource
        if REDISCLOSURE_HEADER in reply.headers:
            # In a Bundle the notice cannot travel as a header: the entry's outcome holds it.
            response["outcome"] = outcome_of([REDISCLOSURE_ISSUE])
    out["response"] = response
    return out
