"""The one read path: authorize -> fetch stored JSON text -> audit record -> respond.

Reads hand back ``StoredResource`` rows whose ``content`` is the stored canonical text, so the
REST layer can send bytes without re-serialising through the FHIR models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from ehr.audit.events import AccessEvent, labels_in
from ehr.context import RequestContext
from ehr.dates import parse_range
from ehr.errors import BadRequest, Gone, Issue, NotFound
from ehr.fhir import canonical_json
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.search import SearchRequest, parse_search
from ehr.store import repository
from ehr.store.repository import StoredResource
from ehr.store.search_sql import execute_search, fetch_includes

# 42 CFR 2.32: every disclosure of a Part 2 record carries this notice.
REDISCLOSURE_NOTICE = ("42 CFR part 2 prohibits unauthorized use or disclosure of these records")
REDISCLOSURE_HEADER = "X-Redisclosure-Notice"
# The notice where a Bundle or an export carries it: an informational OperationOutcome issue.
REDISCLOSURE_ISSUE = Issue("informational", REDISCLOSURE_NOTICE, "information")
_PART2_CODES = ('"code":"SUD"', '"code":"42CFRPart2"')


def part2_text(text: str | None) -> bool:
    """Whether a stored record's text carries a SUD / 42CFRPart2 security label (its notice
    is then required)."""
    # A cheap text test first: parsing every row of every page would tax all searches.
    if not text or not any(c in text for c in _PART2_CODES):
        return False
    meta = canonical_json.loads(text).get("meta") or {}
    return any(isinstance(s, dict) and s.get("code") in ("SUD", "42CFRPart2")
               for s in meta.get("security") or [])


def any_part2(rows: Sequence[StoredResource]) -> bool:
    return any(part2_text(r.content) for r in rows)


@dataclass
class SearchResult:
    request: SearchRequest
    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None
    next_cursor: str | None
    prev_cursor: str | None
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class HistoryResult:
    versions: list[StoredResource]
    total: int
    next_cursor: str | None
    prev_cursor: str | None
    count: int


class Reader:
    def __init__(self, pipeline: Pipeline, session: Session, ctx: RequestContext) -> None:
        self.pipeline = pipeline
        self.session = session
        self.ctx = ctx

    def _record(self, event: AccessEvent) -> None:
        purpose = self.pipeline.guard.purpose_of_use(self.session, self.ctx, event.patients)
        if purpose != self.ctx.purpose_of_use:
            event.detail["purpose_of_use"] = purpose
        self.pipeline.recorder.record(self.session, self.ctx, event)

    def _view(self, rows: list[StoredResource]) -> list[StoredResource]:
        guard = self.pipeline.guard
        return [guard.view(self.session, self.ctx, row) for row in rows]

    def read(self, rtype: str, rid: str) -> StoredResource:
        guard = self.pipeline.guard
        # The common case in one round trip: the live row, already filtered by access control.
        stored = guard.fetch_visible(self.session, self.ctx, rtype, rid)
        if stored is None:
            # Missing, deleted or not visible: the full decision tells them apart (or not).
            stored = repository.get_current(self.session, rtype, rid)
            guard.authorize(self.session, self.ctx, "read", rtype, stored=stored)
        if stored is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if stored.deleted:
            raise Gone(f"{rtype}/{rid} was deleted",
                       headers={"ETag": f'W/"{stored.version_id}"'})
        self._record(AccessEvent("read", rtype, rid, stored.version_id,
                                 patients=_patients(stored), protected=labels_in(stored.content)))
        return self.pipeline.guard.view(self.session, self.ctx, stored)

    def vread(self, rtype: str, rid: str, version_id: int) -> StoredResource:
        stored = repository.get_version(self.session, rtype, rid, version_id)
        current = repository.get_current(self.session, rtype, rid)
        try:
            self.pipeline.guard.authorize(self.session, self.ctx, "vread", rtype,
                                          stored=current or stored)
        except NotFound:
            stored = None  # a hidden record answers exactly like a version that does not exist
        if stored is None:
            raise NotFound(f"{rtype}/{rid}/_history/{version_id} is not known")
        if stored.deleted:
            raise Gone(f"{rtype}/{rid} version {version_id} is a deletion",
                       headers={"ETag": f'W/"{version_id}"'})
        self._record(AccessEvent("vread", rtype, rid, version_id, patients=_patients(stored),
                                 protected=labels_in(stored.content)))
        return self.pipeline.guard.view(self.session, self.ctx, stored)

    def search(
        self, rtype: str | None, params: Sequence[tuple[str, str]], *, strict: bool = False
    ) -> SearchResult:
        settings = self.pipeline.settings
        request = parse_search(rtype, params, strict=strict,
                               default_count=settings.default_page_size,
                               max_count=settings.max_page_size)
        self.pipeline.guard.authorize(self.session, self.ctx, "search", rtype)
        restriction = self.pipeline.guard.restriction(self.session, self.ctx, rtype)
        count = 0 if request.summary == "count" else request.count
        page = execute_search(
            self.session, rtype, request.criteria, count=count, cursor=request.cursor,
            sort=request.sort, with_total=request.total != "none" or request.summary == "count",
            restriction=restriction,
        )
        included: list[StoredResource] = []
        if page.rows and (request.includes or request.revincludes):
            included = fetch_includes(self.session, page.rows, request.includes,
                                      request.revincludes, restriction=restriction)
        patients = tuple(dict.fromkeys(
            p for row in [*page.rows, *included] for p in _patients(row)))
        self._record(AccessEvent("search-type" if rtype else "search-system", rtype,
                                 status=200, patients=patients,
                                 query="&".join(f"{k}={v}" for k, v in request.link_params),
                                 detail={"matches": len(page.rows), "included": len(included)},
                                 protected=_protected([*page.rows, *included])))
        warnings = list(request.warnings)
        if any_part2(page.rows) or any_part2(included):
            warnings.append(REDISCLOSURE_ISSUE)
        return SearchResult(request, self._view(page.rows), self._view(included), page.total,
                            page.next_cursor, page.prev_cursor, warnings)

    def history(
        self, rtype: str | None, rid: str | None, params: Sequence[tuple[str, str]]
    ) -> HistoryResult:
        settings = self.pipeline.settings
        args = _history_args(params, settings.default_page_size, settings.max_page_size)
        level = "instance" if rid else ("type" if rtype else "system")
        restriction = None
        if rid is not None and rtype is not None:
            current = repository.get_current(self.session, rtype, rid)
            self.pipeline.guard.authorize(self.session, self.ctx, "history-instance", rtype,
                                          stored=current)
            if current is None:
                raise NotFound(f"{rtype}/{rid} is not known")
        else:
            self.pipeline.guard.authorize(self.session, self.ctx, f"history-{level}", rtype)
            restriction = self.pipeline.guard.restriction(self.session, self.ctx, rtype)
        count, since, at, before, after = args
        versions = repository.history(self.session, rtype=rtype, rid=rid, since=since, at=at,
                                      before_seq=before, after_seq=after, limit=count + 1,
                                      restriction=restriction)
        more_after = len(versions) > count
        if after is not None:
            more_before = len(versions) > count
            versions = versions[-count:] if more_before else versions
            has_next, has_prev = True, more_before
        else:
            versions = versions[:count]
            has_next, has_prev = more_after, before is not None
        total = repository.history_count(self.session, rtype=rtype, rid=rid, since=since, at=at,
                                         restriction=restriction)
        next_cursor = f"b{versions[-1].seq}" if versions and has_next else None
        prev_cursor = f"a{versions[0].seq}" if versions and has_prev else None
        patients = tuple(dict.fromkeys(p for v in versions for p in _patients(v)))
        self._record(AccessEvent(f"history-{level}", rtype, rid, patients=patients,
                                 protected=_protected(versions)))
        return HistoryResult(self._view(versions), total, next_cursor, prev_cursor, count)


def _protected(rows: Sequence[StoredResource]) -> tuple[str, ...]:
    return tuple(sorted({label for row in rows for label in labels_in(row.content)}))


def _patients(stored: StoredResource) -> tuple[str, ...]:
    if stored.rtype == "Patient":
        return (stored.rid,)
    text = stored.content or ""
    # Cheap scan of the stored text: avoids parsing JSON on the read hot path.
    found: list[str] = []
    start = 0
    marker = '"reference":"Patient/'
    while (i := text.find(marker, start)) != -1:
        j = i + len(marker)
        k = j
        while k < len(text) and text[k] not in '"/':
            k += 1
        found.append(text[j:k])
        start = k
        if len(found) >= 8:
            break
    return tuple(dict.fromkeys(found))


def _history_args(
    params: Sequence[tuple[str, str]], default_count: int, max_count: int
) -> tuple[int, int | None, int | None, int | None, int | None]:
    count, since, at, before, after = default_count, None, None, None, None
    for name, value in params:
        try:
            if name == "_count":
                count = max(1, min(int(value), max_count))
            elif name == "_since":
                since = parse_range(value)[0]
            elif name == "_at":
                # Versions current at some point of a partial date: the range's last instant.
                at = parse_range(value)[1] - 1
            elif name == "_cursor" and value[:1] in ("a", "b"):
                if value[0] == "b":
                    before = int(value[1:])
                else:
                    after = int(value[1:])
            elif name in ("_format", "_pretty"):
                continue
            elif name == "_cursor":
                raise ValueError(value)
        except ValueError as exc:
            raise BadRequest(f"Invalid value for {name}: {value!r}", expression=(name,)) from exc
    return count, since, at, before, after
