"""REST interaction handlers: turn a routed request into reads and writes and a response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlmodel import Session

from ehr import instants
from ehr.context import RequestContext
from ehr.errors import BadRequest, Issue, UnsupportedMediaType
from ehr.fhir import bundles, canonical_json
from ehr.fhir.http import FhirRequest, FhirResponse, is_json_media_type
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.reader import REDISCLOSURE_HEADER, REDISCLOSURE_NOTICE, Reader, any_part2
from ehr.fhir.subsetting import select_elements, summarize
from ehr.fhir.validation import validate_json_body
from ehr.fhir.writer import WriteOutcome, Writer
from ehr.store.repository import StoredResource


@dataclass
class Exchange:
    """Everything one handler needs: the pipeline, the open transaction, who, and what."""

    pipeline: Pipeline
    session: Session
    ctx: RequestContext
    request: FhirRequest

    @property
    def reader(self) -> Reader:
        return Reader(self.pipeline, self.session, self.ctx)

    @property
    def writer(self) -> Writer:
        return Writer(self.pipeline, self.session, self.ctx)

    @property
    def base(self) -> str:
        return self.request.base_url

    def json_body(self) -> dict[str, Any]:
        ctype = self.request.header("content-type")
        if not ctype or not is_json_media_type(ctype):
            raise UnsupportedMediaType(
                f"Content-Type {ctype or '(none)'} is not supported; "
                "send application/fhir+json or application/json"
            )
        return validate_json_body(self.request.body)

    def search_params(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.request.query if k not in ("_format", "_pretty")]


def parse_etag(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError as exc:
        raise BadRequest(f"Invalid version in ETag header: {value!r}", code="invalid") from exc


def version_headers(stored: StoredResource, base: str) -> dict[str, str]:
    return {
        "ETag": f'W/"{stored.version_id}"',
        "Last-Modified": instants.http_date(stored.last_updated),
        "Content-Location": f"{base}/{stored.rtype}/{stored.rid}/_history/{stored.version_id}",
    }


# ``count`` only makes sense for a search.
_READ_SUMMARY = frozenset({"true", "text", "data", "false"})


def resource_response(ex: Exchange, stored: StoredResource, status: int = 200) -> FhirResponse:
    headers = version_headers(stored, ex.base)
    summary = _param(ex, "_summary")
    elements = _param(ex, "_elements")
    body = (stored.content or "").encode()
    if summary is not None and summary not in _READ_SUMMARY:
        raise BadRequest(f"_summary must be one of {', '.join(sorted(_READ_SUMMARY))} on a read",
                         expression=("_summary",))
    if summary or elements:
        resource = canonical_json.loads(stored.content or "{}")
        if elements:
            resource = select_elements(resource, [e.strip() for e in elements.split(",")])
        elif summary:
            resource = summarize(resource, summary)
        body = canonical_json.dumps(resource).encode()
    return FhirResponse(status, body, headers)


def _param(ex: Exchange, name: str) -> str | None:
    for k, v in ex.request.query:
        if k == name:
            return v
    return None


def write_response(ex: Exchange, outcome: WriteOutcome) -> FhirResponse:
    stored = outcome.stored
    if stored is None or stored.deleted:
        issues = outcome.issues or [Issue("informational", "Deleted", "information")]
        return FhirResponse(200, bundles.outcome_bytes(issues))
    headers = version_headers(stored, ex.base)
    if outcome.status == 201:
        headers["Location"] = headers["Content-Location"]
    prefer = ex.request.prefer("return")
    if prefer == "minimal":
        return FhirResponse(outcome.status, b"", headers)
    if prefer == "operationoutcome":
        issues = outcome.issues or [Issue("informational", "Stored", "information")]
        return FhirResponse(outcome.status, bundles.outcome_bytes(issues), headers)
    response = resource_response(ex, stored, outcome.status)
    response.headers.update(headers)
    if outcome.issues:
        # Warnings from clinical rules: the body is the resource (Prefer default), so they
        # travel as compact OperationOutcome issues in a header; Prefer: return=OperationOutcome
        # returns them as the body instead.
        response.headers["X-FHIR-Outcome"] = canonical_json.dumps_any(
            [i.to_fhir() for i in outcome.issues])
    return response


# -- handlers ----------------------------------------------------------------------------


def _with_notice(response: FhirResponse, rows: list[StoredResource]) -> FhirResponse:
    if any_part2(rows):
        response.headers[REDISCLOSURE_HEADER] = REDISCLOSURE_NOTICE
    return response


def read(ex: Exchange, rtype: str, rid: str) -> FhirResponse:
    stored = ex.reader.read(rtype, rid)
    match = ex.request.header("if-none-match")
    if match is not None and parse_etag(match) == stored.version_id:
        return FhirResponse(304, b"", version_headers(stored, ex.base))
    return _with_notice(resource_response(ex, stored), [stored])


def vread(ex: Exchange, rtype: str, rid: str, vid: str) -> FhirResponse:
    try:
        version = int(vid)
    except ValueError as exc:
        raise BadRequest(f"Version id {vid!r} is not a number", code="invalid") from exc
    stored = ex.reader.vread(rtype, rid, version)
    return _with_notice(resource_response(ex, stored), [stored])


def create(ex: Exchange, rtype: str) -> FhirResponse:
    resource = ex.json_body()
    outcome = ex.writer.create(rtype, resource, if_none_exist=ex.request.header("if-none-exist"))
    return write_response(ex, outcome)


def update(ex: Exchange, rtype: str, rid: str) -> FhirResponse:
    resource = ex.json_body()
    outcome = ex.writer.update(rtype, rid, resource,
                               if_match=parse_etag(ex.request.header("if-match")))
    return write_response(ex, outcome)


def conditional_update(ex: Exchange, rtype: str) -> FhirResponse:
    resource = ex.json_body()
    query = urlencode(ex.search_params())
    outcome = ex.writer.conditional_update(rtype, query, resource,
                                           if_match=parse_etag(ex.request.header("if-match")))
    return write_response(ex, outcome)


def delete(ex: Exchange, rtype: str, rid: str) -> FhirResponse:
    return write_response(ex, ex.writer.delete(rtype, rid))


def conditional_delete(ex: Exchange, rtype: str) -> FhirResponse:
    return write_response(ex, ex.writer.conditional_delete(rtype, urlencode(ex.search_params())))


def search(ex: Exchange, rtype: str | None, params: list[tuple[str, str]]) -> FhirResponse:
    strict = ex.request.prefer("handling") == "strict"
    result = ex.reader.search(rtype, params, strict=strict)
    return FhirResponse(200, bundles.searchset(ex.base, rtype, result))


def search_form(ex: Exchange) -> list[tuple[str, str]]:
    """The parameters of a ``POST _search``: the query string plus the form body."""
    ctype = (ex.request.header("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search takes application/x-www-form-urlencoded")
    try:
        form = parse_qsl(ex.request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise BadRequest("The form body is not UTF-8") from exc
    if any("\x00" in k or "\x00" in v for k, v in form):
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
        raise BadRequest("The form body contains a NUL character")
    return [*ex.search_params(), *form]


def search_post(ex: Exchange, rtype: str) -> FhirResponse:
    return search(ex, rtype, search_form(ex))


def history(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    result = ex.reader.history(rtype, rid, ex.search_params())
    path = "/".join(p for p in (rtype, rid) if p) + ("/_history" if rtype else "_history")
    return _with_notice(
        FhirResponse(200, bundles.history(ex.base, path, result, ex.search_params())),
        result.versions)
