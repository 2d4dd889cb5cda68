"""Bundles built from stored text: searchset and history pages are assembled as bytes.

Stored resources are spliced in verbatim, so a page of results costs no JSON parsing unless
``_summary`` or ``_elements`` asks for a subset.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from urllib.parse import urlencode

from ehr import instants
from ehr.errors import Issue, outcome_of
from ehr.fhir import canonical_json
from ehr.fhir.reader import HistoryResult, SearchResult
from ehr.fhir.subsetting import select_elements, summarize
from ehr.store.repository import StoredResource


def _link(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    query = urlencode(list(params))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def paging_links(
    base: str, path: str, params: Sequence[tuple[str, str]], next_cursor: str | None,
    prev_cursor: str | None,
) -> list[tuple[str, str]]:
    """``self``, and ``next``/``previous`` carrying the opaque keyset ``_cursor``."""
    kept = [(k, v) for k, v in params if k != "_cursor"]
    links = [("self", _link(base, path, kept))]
    for relation, cursor in (("next", next_cursor), ("previous", prev_cursor)):
        if cursor:
            links.append((relation, _link(base, path, [*kept, ("_cursor", cursor)])))
    return links


def envelope(kind: str, total: int | None, links: list[tuple[str, str]],
             entries: list[str]) -> bytes:
    """A Bundle around entries that are already JSON text."""
    body = _head(kind, total, links)
    if entries:
        body += ',"entry":[' + ",".join(entries) + "]"
    return (body + "}").encode()


def _head(kind: str, total: int | None, links: list[tuple[str, str]]) -> str:
    parts = [
        '{"resourceType":"Bundle"',
        f'"id":"{uuid.uuid4()}"',
        f'"meta":{{"lastUpdated":"{instants.instant(instants.now_us())}"}}',
        f'"type":"{kind}"',
    ]
    if total is not None:
        parts.append(f'"total":{total}')
    if links:
        parts.append('"link":' + canonical_json.dumps_any(
            [{"relation": rel, "url": url} for rel, url in links]))
    return ",".join(parts)


def _content(stored: StoredResource, summary: str | None, elements: list[str] | None) -> str:
    text = stored.content or "{}"
    if (summary in (None, "false")) and not elements:
        return text
    resource = canonical_json.loads(text)
    if elements:
        resource = select_elements(resource, elements)
    elif summary:
        resource = summarize(resource, summary)
    return canonical_json.dumps(resource)


def searchset(
    base: str, rtype: str | None, result: SearchResult
) -> bytes:
    req = result.request
    links = paging_links(base, rtype or "", req.link_params, result.next_cursor,
                         result.prev_cursor)
    entries: list[str] = []
    for rows, mode in ((result.matches, "match"), (result.included, "include")):
        for stored in rows:
            entries.append(
                f'{{"fullUrl":"{base}/{stored.rtype}/{stored.rid}",'
                f'"resource":{_content(stored, req.summary, req.elements)},'
                f'"search":{{"mode":"{mode}"}}}}'
            )
    if result.warnings:
        entries.append(outcome_entry(result.warnings))
    return envelope("searchset", result.total, links, entries)


def outcome_entry(issues: Sequence[Issue]) -> str:
    """A searchset entry (search.mode outcome) carrying ``issues`` as an OperationOutcome."""
    return ('{"resource":' + canonical_json.dumps_any(outcome_of(issues))
            + ',"search":{"mode":"outcome"}}')


def history(
    base: str, path: str, result: HistoryResult, params: Sequence[tuple[str, str]]
) -> bytes:
    links = paging_links(base, path, params, result.next_cursor, result.prev_cursor)
    entries: list[str] = []
    for v in result.versions:
        url = f"{v.rtype}/{v.rid}"
        # A create after a delete is a later version, but still a 201.
        status = "201 Created" if v.method in ("create", "insert") else "200 OK"
        response = canonical_json.dumps_any({
            "status": "410 Gone" if v.deleted else status,
            "etag": f'W/"{v.version_id}"',
            "lastModified": instants.instant(v.last_updated),
        })
        if v.deleted:
            request = f'{{"method":"DELETE","url":"{url}"}}'
            entries.append(f'{{"fullUrl":"{base}/{url}","request":{request},"response":{response}}}')
        else:
            method, target = ("POST", v.rtype) if v.method == "create" \
                else ("PUT", url)
            entries.append(
                f'{{"fullUrl":"{base}/{url}","resource":{v.content},'
                f'"request":{{"method":"{method}","url":"{target}"}},"response":{response}}}'
            )
    return envelope("history", result.total, links, entries)


def outcome_bytes(issues: Sequence[Issue]) -> bytes:
    return canonical_json.dumps_any(outcome_of(issues)).encode()
