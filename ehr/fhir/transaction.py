"""Transaction and batch Bundles (``POST [base]``), following FHIR R4 http.html#transaction.

A transaction runs inside the request's one database transaction: any failing entry raises an
``EhrError`` naming ``Bundle.entry[i]`` and the router rolls everything back. Entries run in the
spec's order (DELETE, POST, PUT, GET); POST entries get their ids before anything is stored, so
references between entries (``urn:uuid:``, ``urn:oid:``, absolute fullUrls) and conditional
references (``Type?criteria``) are rewritten to ``Type/id`` first and every resource is stored
once, already final. A batch runs each entry in a SAVEPOINT of its own, so a failing entry
rolls back only itself and reports its error in ``response.outcome``.

Every write goes through the ``Writer``, so access control, clinical rules and audit apply per
entry. The response carries the resource only under ``Prefer: return=representation`` (as HAPI
does): a Synthea-sized bundle would otherwise echo megabytes nobody reads.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from ehr import instants
from ehr.context import RequestContext
from ehr.errors import (
    BadRequest,
    EhrError,
    Issue,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    outcome_of,
)
from ehr.fhir import canonical_json
from ehr.fhir.conditional import find_matches, find_one
from ehr.fhir.http import FhirRequest, FhirResponse
from ehr.fhir.interactions import Exchange, parse_etag
from ehr.fhir.pipeline import AccessEvent, Pipeline
from ehr.fhir.transaction_entries import PHASES, Entry, at_entry, check_envelope, parse_entry
from ehr.fhir.transaction_reads import read_entry, status_line
from ehr.fhir.transaction_refs import base_of, conditional_target, fhirpath, is_local, rewrite
from ehr.fhir.validation import ensure_valid
from ehr.fhir.writer import WriteOutcome, Writer
from ehr.store.repository import StoredResource

_MAX_PATHS_PER_ISSUE = 10


def process_bundle(ex: Exchange) -> FhirResponse:
    """``POST [base]`` with a transaction or batch Bundle."""
    bundle = ex.json_body()
    result = execute_bundle(ex.pipeline, ex.session, ex.ctx, bundle, base_url=ex.base,
                            prefer=ex.request.prefer("return"))
    return FhirResponse(200, canonical_json.dumps_any(result).encode())


def execute_bundle(
    pipeline: Pipeline,
    session: Session,
    ctx: RequestContext,
    bundle: dict[str, Any],
    *,
    base_url: str = "",
    prefer: str | None = None,
) -> dict[str, Any]:
    """Run a transaction or batch in ``session`` (never committed here); the response Bundle."""
    kind, raw_entries = check_envelope(bundle)
    processor = _Processor(pipeline, session, ctx, base_url, prefer)
    if kind == "transaction":
        responses = processor.transaction(raw_entries)
    else:
        responses = processor.batch(raw_entries)
    failed = sum(1 for r in responses if not r["response"]["status"].startswith(("2", "3")))
    pipeline.recorder.record(session, ctx, AccessEvent(
        kind, status=200, detail={"entries": len(responses), "failed": failed}))
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instants.instant(instants.now_us())},
        "type": f"{kind}-response",
    }
    if responses:
        out["entry"] = responses
    return out


class _Processor:
    def __init__(self, pipeline: Pipeline, session: Session, ctx: RequestContext,
                 base_url: str, prefer: str | None) -> None:
        self.pipeline = pipeline
        self.session = session
        self.ctx = ctx
        self.base = base_url.rstrip("/")
        self.prefer = prefer
        self.writer = Writer(pipeline, session, ctx)
        self._conditional_cache: dict[str, StoredResource | int] = {}

    # -- transaction ----------------------------------------------------------------------

    def transaction(self, raw_entries: list[Any]) -> list[dict[str, Any]]:
        entries = [parse_entry(i, raw, self.base) for i, raw in enumerate(raw_entries)]
        self._check_full_urls(entries)
        self._validate_all(entries)
        responses: list[dict[str, Any] | None] = [None] * len(entries)
        written: dict[str, int] = {}
        for entry in (e for e in entries if e.phase == "DELETE"):
            responses[entry.index] = self._guarded(entry, self._delete, entry, written)

        ids: dict[int, str] = {}
        matched: dict[int, StoredResource] = {}
        identities: dict[str, str] = {}
        for entry in (e for e in entries if e.phase in ("POST", "PUT")):
            self._guarded(entry, self._resolve_identity, entry, ids, matched)
            if entry.index in ids and entry.full_url:
                identities[entry.full_url] = f"{entry.rtype}/{ids[entry.index]}"
        self._rewrite_all([e for e in entries if e.index in ids and e.index not in matched],
                          identities)

        for phase in PHASES[1:]:
            for entry in (e for e in entries if e.phase == phase):
                if phase == "GET":
                    responses[entry.index] = self._guarded(
                        entry, read_entry, self._exchange(entry), entry)
                elif entry.index in matched:
                    responses[entry.index] = self._response(200, matched[entry.index], [])
                else:
                    responses[entry.index] = self._guarded(
                        entry, self._store, entry, ids[entry.index], written)
        return [r for r in responses if r is not None]

    def _guarded(self, entry: Entry, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except EhrError as err:
            raise at_entry(err, entry.index, _resource_type(entry), entry.describe()) from err

    def _check_full_urls(self, entries: list[Entry]) -> None:
        seen: dict[str, int] = {}
        for entry in entries:
            if entry.full_url is None:
                continue
            if entry.full_url in seen:
                raise BadRequest(
                    f"{entry.label}.fullUrl {entry.full_url!r} repeats the fullUrl of "
                    f"Bundle.entry[{seen[entry.full_url]}]", code="invalid",
                    expression=(f"Bundle.entry[{seen[entry.full_url]}].fullUrl",
                                f"{entry.label}.fullUrl"))
            seen[entry.full_url] = entry.index

    def _validate_all(self, entries: list[Entry]) -> None:
        """Validate every entry before failing, so one response lists every invalid resource."""
        failures: list[EhrError] = []
        for entry in entries:
            try:
                self._guarded(entry, self._validate, entry)
            except EhrError as err:
                failures.append(err)
        if failures:
            # A malformed request (400) outranks invalid content (422) in the one status.
            issues = [issue for err in failures for issue in err.issues]
            lead = next((err for err in failures if err.status == 400), failures[0])
            raise type(lead)(issues=issues)

    def _validate(self, entry: Entry) -> None:
        if entry.resource is None:
            return
        ensure_valid(entry.resource, expected_type=entry.rtype,
                     expected_id=entry.rid if entry.kind == "update" else None,
                     allow_conditional_references=True)

    def _resolve_identity(self, entry: Entry, ids: dict[int, str],
                          matched: dict[int, StoredResource]) -> None:
        """Fix the id each POST/PUT entry will have before any of them is stored."""
        assert entry.rtype is not None and entry.resource is not None
        if entry.kind == "create":
            if entry.if_none_exist:
                found = self._match_one(entry.rtype, entry.if_none_exist, "If-None-Exist")
                if found is not None:
                    matched[entry.index] = found
                    ids[entry.index] = found.rid
                    return
            ids[entry.index] = str(uuid.uuid4())
        elif entry.kind == "update":
            assert entry.rid is not None
            ids[entry.index] = entry.rid
        else:
            ids[entry.index] = self._conditional_update_id(entry)

    def _conditional_update_id(self, entry: Entry) -> str:
        assert entry.rtype is not None and entry.resource is not None
        found = self._match_one(entry.rtype, entry.query, "Conditional update")
        given = entry.resource.get("id")
        if found is None:
            return given if isinstance(given, str) else str(uuid.uuid4())
        if given not in (None, found.rid):
            raise Unprocessable(
                f"Resource id {given!r} does not match the matched {entry.rtype}/{found.rid}",
                code="invalid", expression=(f"{entry.rtype}.id",))
        return found.rid

    def _match_one(self, rtype: str, query: str, what: str) -> StoredResource | None:
        return find_one(self.pipeline, self.session, self.ctx, rtype, query, what)

    def _rewrite_all(self, entries: list[Entry], identities: dict[str, str]) -> None:
        """Rewrite references everywhere; every unresolvable one is reported in one error."""
        problems: dict[str, tuple[int, str, list[str]]] = {}  # reference -> status, text, paths
        for entry in entries:
            assert entry.resource is not None

            def unresolved(reference: str, path: tuple[str | int, ...],
                           entry: Entry = entry) -> str | None:
                target, status, text = self._resolve_reference(reference)
                if target is None:
                    where = fhirpath(f"{entry.label}.resource", path)
                    problems.setdefault(reference, (status, text, []))[2].append(where)
                return target

            rewrite(entry.resource, identities, base_of(entry.full_url), unresolved)
        if problems:
            raise _reference_error(problems)

    def _resolve_reference(self, reference: str) -> tuple[str | None, int, str]:
        """The ``Type/id`` a placeholder or conditional reference stands for, or why not."""
        conditional = conditional_target(reference)
        if conditional is None:
            if is_local(reference):
                return None, 404, (f"Reference {reference!r} is not the fullUrl of any entry "
                                   "in this Bundle")
            return reference, 200, ""
        rtype, query = conditional
        cached = self._conditional_cache.get(reference)
        if cached is None:
            try:
                matches = find_matches(self.pipeline, self.session, self.ctx, rtype, query)
            except EhrError as err:
                return None, err.status, f"Conditional reference {reference!r}: {err.diagnostics}"
            cached = matches[0] if len(matches) == 1 else len(matches)
            self._conditional_cache[reference] = cached
        if isinstance(cached, StoredResource):
            return f"{cached.rtype}/{cached.rid}", 200, ""
        if cached == 0:
            return None, 404, f"Conditional reference {reference!r} matches no {rtype}"
        return None, 412, f"Conditional reference {reference!r} matches several {rtype} resources"

    # -- the interactions -----------------------------------------------------------------

    def _claim(self, identity: str, entry: Entry, written: dict[str, int] | None) -> None:
        if written is None:
            return
        if identity in written:
            raise BadRequest(
                f"{identity} is written by both Bundle.entry[{written[identity]}] and "
                f"{entry.label}: a transaction may touch a resource only once", code="invalid",
                expression=(f"Bundle.entry[{written[identity]}]", entry.label))
        written[identity] = entry.index

    def _store(self, entry: Entry, rid: str, written: dict[str, int] | None) -> dict[str, Any]:
        assert entry.rtype is not None and entry.resource is not None
        self._claim(f"{entry.rtype}/{rid}", entry, written)
        if entry.method == "POST":
            outcome = self.writer.create(entry.rtype, {**entry.resource, "id": rid},
                                         validate=False, rid=rid)
        else:
            outcome = self.writer.update(entry.rtype, rid, {**entry.resource, "id": rid},
                                         if_match=parse_etag(entry.if_match), validate=False)
        return self._written(outcome)

    def _delete(self, entry: Entry, written: dict[str, int] | None) -> dict[str, Any]:
        assert entry.rtype is not None
        rid = entry.rid
        if entry.kind == "conditional-delete":
            found = self._match_one(entry.rtype, entry.query, "Conditional delete")
            if found is None:
                return self._response(200, None, [Issue(
                    "not-found", f"No {entry.rtype} matches {entry.query!r}: nothing deleted",
                    "information")])
            rid = found.rid
        assert rid is not None
        self._claim(f"{entry.rtype}/{rid}", entry, written)
        outcome = self.writer.delete(entry.rtype, rid, if_match=parse_etag(entry.if_match))
        if outcome.issues:
            return self._written(outcome)
        return self._response(204, outcome.stored, [])

    def _exchange(self, entry: Entry) -> Exchange:
        headers = {"if-none-match": entry.if_none_match} if entry.if_none_match else {}
        request = FhirRequest("GET", entry.path, list(entry.params), headers, b"", self.base)
        return Exchange(self.pipeline, self.session, self.ctx, request)

    # -- responses ------------------------------------------------------------------------

    def _written(self, outcome: WriteOutcome) -> dict[str, Any]:
        return self._response(outcome.status, outcome.stored, outcome.issues)

    def _response(self, status: int, stored: StoredResource | None,
                  issues: list[Issue]) -> dict[str, Any]:
        response: dict[str, Any] = {"status": status_line(status)}
        out: dict[str, Any] = {}
        if stored is not None:
            where = f"{stored.rtype}/{stored.rid}"
            if not stored.deleted:
                response["location"] = f"{where}/_history/{stored.version_id}"
            response["etag"] = f'W/"{stored.version_id}"'
            response["lastModified"] = instants.instant(stored.last_updated)
            if self.prefer == "representation" and stored.content:
                out["fullUrl"] = f"{self.base}/{where}" if self.base else where
                out["resource"] = canonical_json.loads(stored.content)
        if issues or self.prefer == "operationoutcome":
            response["outcome"] = outcome_of(
                issues or [Issue("informational", "Processed", "information")])
        out["response"] = response
        return out

    # -- batch ----------------------------------------------------------------------------

    def batch(self, raw_entries: list[Any]) -> list[dict[str, Any]]:
        return [self._batch_entry(i, raw) for i, raw in enumerate(raw_entries)]

    def _batch_entry(self, index: int, raw: Any) -> dict[str, Any]:
        recorder = self.pipeline.recorder
        try:
            entry = parse_entry(index, raw, self.base)
        except EhrError as err:
            self._audit_failed_entry(index, None, err)
            return _failed(err)
        mark = recorder.mark(self.session)
        try:
            with self.session.begin_nested():
                return self._batch_run(entry)
        except EhrError as err:
            # The entry's savepoint is gone, and with it whatever it wrote: so are its records.
            recorder.rollback_to(self.session, mark)
            self._audit_failed_entry(index, entry, err)
            return _failed(err)

    def _audit_failed_entry(self, index: int, entry: Entry | None, err: EhrError) -> None:
        method = entry.method if entry is not None else "?"
        self.pipeline.recorder.record(self.session, self.ctx, AccessEvent(
            f"batch-entry:{method.lower()}", entry.rtype if entry else None,
            entry.rid if entry else None, status=err.status,
            detail={"entry": index, "reason": err.diagnostics[:500]}))

    def _batch_run(self, entry: Entry) -> dict[str, Any]:
        if entry.phase == "GET":
            return read_entry(self._exchange(entry), entry)
        if entry.phase == "DELETE":
            return self._delete(entry, None)
        assert entry.rtype is not None and entry.resource is not None
        self._validate(entry)
        # No references between batch entries (the spec calls them non-conformant), but
        # conditional references are resolved as they are in a transaction.
        self._rewrite_all([entry], {})
        if entry.kind == "create":
            outcome = self.writer.create(entry.rtype, entry.resource,
                                         if_none_exist=entry.if_none_exist, validate=False)
            return self._written(outcome)
        rid = entry.rid if entry.kind == "update" else self._conditional_update_id(entry)
        assert rid is not None
        return self._store(entry, rid, None)


def _resource_type(entry: Entry) -> str | None:
    if entry.resource is not None and isinstance(entry.resource.get("resourceType"), str):
        return str(entry.resource["resourceType"])
    return entry.rtype


def _failed(err: EhrError) -> dict[str, Any]:
    return {"response": {"status": status_line(err.status), "outcome": err.outcome()}}


def _reference_error(problems: dict[str, tuple[int, str, list[str]]]) -> EhrError:
    codes = {404: "not-found", 412: "multiple-matches"}
    issues = [Issue(codes.get(status, "invalid"), text, "error",
                    tuple(paths[:_MAX_PATHS_PER_ISSUE]))
              for status, text, paths in problems.values()]
    statuses = {status for status, _, _ in problems.values()}
    # A malformed criterion is the client's mistake whatever else failed; then "not there".
    if statuses - {404, 412}:
        return BadRequest(issues=issues)
    if 404 in statuses:
        return NotFound(issues=issues)
    return PreconditionFailed(issues=issues)
