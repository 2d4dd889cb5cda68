"""Loading files into the store (``ehr load``) through the one write path.

A file is one of:
- a transaction or batch Bundle: run as ``POST [base]`` would, in one unit of work;
- any other Bundle (collection, searchset, history, document, ...): each entry's resource is
  written on its own, like NDJSON lines;
- a single resource;
- NDJSON (``.ndjson``/``.jsonl``): one resource per line, read line by line in constant memory,
  committed every ``batch_size`` resources.

Resources with an ``id`` are written with update-as-create (PUT semantics) so loading a file
again leaves the same resources (as new versions); resources without one are created. ``.gz``
files are decompressed on the fly (recognised by their magic bytes, whatever the name).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Engine
from sqlmodel import Session

from ehr.context import RequestContext, bind_context
from ehr.db import unit_of_work
from ehr.errors import BadRequest, EhrError
from ehr.fhir import canonical_json
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.transaction import execute_bundle
from ehr.fhir.transaction_entries import BUNDLE_KINDS
from ehr.fhir.validation import validate_json_body
from ehr.fhir.writer import Writer

Progress = Callable[[int, int], None]  # (resources done, bytes of the file read so far)

NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
MAX_KEPT_ERRORS = 1000
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class LoadProblem:
    path: str
    where: str  # "line 12" for NDJSON, "Bundle.entry[3]" for bundles, "" for the whole file
    status: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}{': ' + self.where if self.where else ''}: {self.message}"


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[LoadProblem] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def done(self) -> int:
        return self.created + self.updated

    def note(self, problem: LoadProblem) -> None:
        self.failed += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(problem)


class LoadFailed(EhrError):
    """Loading stopped at a bad resource; ``report`` says what was committed before it."""

    status = 422
    default_code = "processing"

    def __init__(self, problem: LoadProblem, report: LoadReport, detail: str) -> None:
        super().__init__(f"{problem}. {detail}")
        self.problem = problem
        self.report = report


def load_file(
    engine: Engine,
    pipeline: Pipeline,
    ctx: RequestContext,
    path: str | Path,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    continue_on_error: bool = False,
) -> LoadReport:
    """Load one file; raise ``LoadFailed`` at the first bad resource unless continuing."""
    path = Path(path)
    if batch_size < 1:
        raise BadRequest("batch_size must be at least 1")
    with bind_context(ctx):
        loader = _Loader(engine, pipeline, ctx, path, batch_size, progress, continue_on_error)
        if _stem_suffix(path) in NDJSON_SUFFIXES:
            return loader.ndjson()
        return loader.document()


def _stem_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


@contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """The raw file (whose position measures progress) and the decompressed stream."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise BadRequest(f"{path}: cannot open: {exc.strerror}") from exc
    with raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                yield raw, cast(IO[bytes], unpacked)
        else:
            yield raw, raw


# One item to store: where it came from, the parsed resource or why it is bad, bytes read.
_Item = tuple[str, Any, int]


class _Loader:
    def __init__(self, engine: Engine, pipeline: Pipeline, ctx: RequestContext, path: Path,
                 batch_size: int, progress: Progress | None, continue_on_error: bool) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.ctx = ctx
        self.path = path
        self.batch_size = batch_size
        self.progress = progress
        self.continue_on_error = continue_on_error
        self.report = LoadReport()

    # -- file kinds -----------------------------------------------------------------------

    def ndjson(self) -> LoadReport:
        with _open(self.path) as (raw, stream):
            return self._store_stream(self._lines(raw, stream))

    def _lines(self, raw: IO[bytes], stream: IO[bytes]) -> Iterator[_Item]:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"line {number}"
            try:
                item: Any = canonical_json.loads(line)
            except ValueError as exc:  # JSONDecodeError, bad UTF-8, over-long integers
                item = BadRequest(f"Malformed JSON: {exc}", code="structure")
            except RecursionError:
                item = BadRequest("Malformed JSON: nested too deeply", code="structure")
            yield where, item, raw.tell()

    def document(self) -> LoadReport:
        with _open(self.path) as (raw, stream):
            body = stream.read()
            size = raw.tell()
        try:
            data = validate_json_body(body)
        except EhrError as err:
            if "Extra data" in err.diagnostics:  # several JSON texts: NDJSON under another name
                return self.ndjson()
            return self._fail_whole(err, size)
        if data.get("resourceType") == "Bundle" and data.get("type") in BUNDLE_KINDS:
            return self._bundle(data, size)
        if data.get("resourceType") == "Bundle":
            entries = data.get("entry") or []
            return self._store_stream(
                (f"Bundle.entry[{i}]", e.get("resource") if isinstance(e, dict) else e, size)
                for i, e in enumerate(entries if isinstance(entries, list) else [])
                if not _skipped_entry(e))
        return self._store_stream([("", data, size)])

    def _bundle(self, bundle: dict[str, Any], size: int) -> LoadReport:
        try:
            with unit_of_work(self.engine, write=True) as session:
                result = execute_bundle(self.pipeline, session, self.ctx, bundle)
        except EhrError as err:
            return self._fail_whole(err, size, "The transaction was rolled back: nothing from "
                                               "this file was stored.")
        requests = bundle.get("entry") or []
        for i, (request, entry) in enumerate(zip(requests, result.get("entry", []), strict=True)):
            asked = request.get("request") if isinstance(request, dict) else None
            method = str((asked if isinstance(asked, dict) else {}).get("method", "")).upper()
            status = int(entry["response"]["status"].split()[0])
            if status >= 400:
                outcome = entry["response"].get("outcome") or {}
                self.report.note(LoadProblem(str(self.path), f"Bundle.entry[{i}]", status,
                                             _outcome_text(outcome.get("issue", []))))
            elif method in ("POST", "PUT"):
                if status == 201:
                    self.report.created += 1
                else:
                    self.report.updated += 1
        self._progressed(size)
        return self.report

    def _fail_whole(self, err: EhrError, size: int, detail: str = "") -> LoadReport:
        problem = LoadProblem(str(self.path), "", err.status, _outcome_text(
            [i.to_fhir() for i in err.issues]))
        self.report.bytes_read = size
        if not self.continue_on_error:
            raise LoadFailed(problem, self.report, detail or "Nothing from this file was stored.")
        self.report.note(problem)
        return self.report

    # -- the streaming write loop ---------------------------------------------------------

    def _store_stream(self, items: Iterable[_Item]) -> LoadReport:
        iterator = iter(items)
        committed_upto = ""
        exhausted = False
        while not exhausted:
            exhausted = True
            last_where, position = "", self.report.bytes_read
            before = (self.report.created, self.report.updated)
            try:
                with unit_of_work(self.engine, write=True) as session:
                    writer = Writer(self.pipeline, session, self.ctx)
                    for count, (where, item, at) in enumerate(iterator, start=1):
                        last_where, position = where, at
                        self._one(session, writer, where, item)
                        if count >= self.batch_size:
                            exhausted = False
                            break
            except _Stop as stop:
                self.report.created, self.report.updated = before
                raise LoadFailed(stop.problem, self.report, _committed_text(committed_upto)) \
                    from stop.cause
            if last_where or committed_upto == "":
                # An empty last batch (the stream ended on a batch boundary) adds nothing to say.
                self._progressed(position)
            committed_upto = last_where or committed_upto
        return self.report

    def _one(self, session: Session, writer: Writer, where: str, item: Any) -> None:
        try:
            if isinstance(item, EhrError):
                raise item
            if self.continue_on_error:
                with session.begin_nested():
                    self._write(writer, item)
            else:
                self._write(writer, item)
        except EhrError as err:
            problem = LoadProblem(str(self.path), where, err.status,
                                  _outcome_text([i.to_fhir() for i in err.issues]))
            if not self.continue_on_error:
                raise _Stop(problem, err) from err
            self.report.note(problem)

    def _write(self, writer: Writer, resource: Any) -> None:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest("Not a FHIR resource: expected a JSON object with a resourceType",
                             code="structure")
        rtype = resource["resourceType"]
        rid = resource.get("id")
        if isinstance(rid, str):
            outcome = writer.update(rtype, rid, resource)
        else:
            outcome = writer.create(rtype, resource)
        if outcome.status == 201:
            self.report.created += 1
        else:
            self.report.updated += 1

    def _progressed(self, position: int) -> None:
        self.report.bytes_read = max(self.report.bytes_read, position)
        if self.progress is not None:
            self.progress(self.report.done, self.report.bytes_read)


class _Stop(Exception):
    def __init__(self, problem: LoadProblem, cause: EhrError) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.cause = cause


def _skipped_entry(entry: Any) -> bool:
    """Entries that carry no resource to store: deletions in a history, search outcomes."""
    if not isinstance(entry, dict) or entry.get("resource") is None:
        return True
    mode = (entry.get("search") or {}).get("mode")
    return mode == "outcome"


def _committed_text(committed_upto: str) -> str:
    if not committed_upto:
        return "Nothing from this file was stored."
    return (f"Everything up to and including {committed_upto} was committed and stays; nothing "
            "after it was stored (use --continue-on-error to skip bad resources).")


def _outcome_text(issues: list[Any]) -> str:
    parts = []
    for issue in issues[:5]:
        if not isinstance(issue, dict):
            continue
        text = str(issue.get("diagnostics") or issue.get("code") or "error")
        where = issue.get("expression") or []
        parts.append(f"{text} [{', '.join(map(str, where[:3]))}]" if where else text)
    more = len(issues) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")

