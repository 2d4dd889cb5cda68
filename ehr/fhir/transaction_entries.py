"""The request side of a transaction or batch Bundle: its envelope and each entry's request.

Parsing is pure (no database): it turns ``Bundle.entry[i].request`` into an ``Entry`` that says
which interaction to run, or an ``EhrError`` whose issues point at the offending element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ehr.errors import BadRequest, EhrError, Issue, MethodNotAllowed, PayloadTooLarge
from ehr.fhir.references import is_valid_id
from ehr.fhir.resource_types import R4_RESOURCE_TYPES

MAX_ENTRIES = 10_000
BUNDLE_KINDS = ("transaction", "batch")
# The order the FHIR spec (http.html#trules) imposes on a transaction's entries.
PHASES = ("DELETE", "POST", "PUT", "GET")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})


@dataclass
class Entry:
    """One parsed ``Bundle.entry``: ``kind`` names the interaction to run."""

    index: int
    method: str  # GET | HEAD | POST | PUT | DELETE
    kind: str  # create | update | conditional-update | delete | conditional-delete | read ...
    rtype: str | None
    rid: str | None = None
    vid: str | None = None
    query: str = ""  # the search criteria of a conditional interaction or a search
    resource: dict[str, Any] | None = None
    full_url: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    path: str = ""  # below the FHIR base, for GET entries
    params: list[tuple[str, str]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return "GET" if self.method == "HEAD" else self.method

    @property
    def label(self) -> str:
        return f"Bundle.entry[{self.index}]"

    def describe(self) -> str:
        target = "/".join(p for p in (self.rtype, self.rid) if p) or "(base)"
        return f"{self.method} {target}" + (f"?{self.query}" if self.query else "")


def check_envelope(bundle: dict[str, Any]) -> tuple[str, list[Any]]:
    """The Bundle's type and entries, or a 400/413 explaining what is wrong with it."""
    if bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType")
        raise BadRequest(
            f"POST to the service base takes a Bundle of type transaction or batch, not "
            f"{found!r}", code="invalid", expression=("resourceType",))
    kind = bundle.get("type")
    if kind not in BUNDLE_KINDS:
        raise BadRequest(
            f"Bundle.type {kind!r} cannot be processed here: send a transaction or a batch",
            code="invalid", expression=("Bundle.type",))
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array", code="structure",
                         expression=("Bundle.entry",))
    if len(entries) > MAX_ENTRIES:
        raise PayloadTooLarge(
            f"The Bundle has {len(entries)} entries; at most {MAX_ENTRIES} are accepted in one "
            "request: split it", expression=("Bundle.entry",))
    return str(kind), entries


def parse_entry(index: int, raw: Any, base_url: str) -> Entry:
    """Parse one entry; every problem raises an ``EhrError`` naming ``Bundle.entry[index]``."""
    here = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{here} must be an object", code="structure", expression=(here,))
    request = raw.get("request")
    if not isinstance(request, dict):
        raise BadRequest(f"{here} has no request", code="required",
                         expression=(f"{here}.request",))
    method = request.get("method")
    url = request.get("url")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise BadRequest(f"{here}.request.method {method!r} is not an HTTP method FHIR allows",
                         code="value", expression=(f"{here}.request.method",))
    method = method.upper()
    if not isinstance(url, str) or not url.strip():
        raise BadRequest(f"{here}.request.url is missing", code="required",
                         expression=(f"{here}.request.url",))
    if method == "PATCH":
        raise MethodNotAllowed("PATCH is not supported", expression=(f"{here}.request.method",))
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise BadRequest(f"{here}.fullUrl must be a string", code="structure",
                         expression=(f"{here}.fullUrl",))
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise BadRequest(f"{here} ({method}) must carry a resource", code="required",
                             expression=(f"{here}.resource",))
    else:
        resource = None
    path, query = _split_url(url.strip(), base_url)
    entry = Entry(
        index, method, "", None, resource=resource, full_url=full_url or None,
        if_match=_text(request, "ifMatch", here), if_none_match=_text(request, "ifNoneMatch", here),
        if_none_exist=_text(request, "ifNoneExist", here), path=path, query=query,
        params=parse_qsl(query, keep_blank_values=True),
    )
    _classify(entry, [p for p in path.split("/") if p], url)
    return entry


def _text(request: dict[str, Any], key: str, here: str) -> str | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{here}.request.{key} must be a string", code="structure",
                         expression=(f"{here}.request.{key}",))
    return value


def _split_url(url: str, base_url: str) -> tuple[str, str]:
    """The path below the FHIR base and the query; absolute URLs are cut at the base."""
    if url.startswith(("http://", "https://")):
        if base_url and url.startswith(base_url.rstrip("/") + "/"):
            url = url[len(base_url.rstrip("/")) + 1:]
        else:
            parts = urlsplit(url)
            segments = parts.path.split("/")
            # A foreign base: the path starts at the first segment naming a resource type.
            start = next((i for i, s in enumerate(segments) if s in R4_RESOURCE_TYPES), None)
            if start is None:
                raise BadRequest(f"Cannot find a resource type in the request url {url!r}",
                                 code="invalid")
            url = "/".join(segments[start:]) + (f"?{parts.query}" if parts.query else "")
    path, _, query = url.lstrip("/").partition("?")
    return path, query


def _classify(entry: Entry, parts: list[str], url: str) -> None:
    here = f"{entry.label}.request.url"
    if not parts or parts[0] not in R4_RESOURCE_TYPES:
        raise BadRequest(f"{here} {url!r} does not start with a resource type",
                         code="not-supported" if parts and parts[0].startswith("$") else "invalid",
                         expression=(here,))
    entry.rtype = parts[0]
    rest = parts[1:]
    if any(p.startswith("$") for p in rest):
        raise BadRequest(f"Operations ({url!r}) are not supported inside a Bundle",
                         code="not-supported", expression=(here,))
    method = entry.phase
    if method == "GET":
        entry.kind = _read_kind(rest, here, url)
        if entry.kind in ("read", "vread", "history-instance"):
            entry.rid = rest[0]
        if entry.kind == "vread":
            entry.vid = rest[2]
        return
    if rest and entry.query and method != "POST":
        raise BadRequest(f"{here} {url!r} has both an id and search criteria", code="invalid",
                         expression=(here,))
    if method == "POST":
        if rest:
            raise BadRequest(f"{here} of a POST must name only a resource type, not {url!r}",
                             code="invalid", expression=(here,))
        entry.kind = "create"
    elif len(rest) > 1:
        raise BadRequest(f"{here} {url!r} is not Type/id or Type?criteria", code="invalid",
                         expression=(here,))
    elif rest:
        if not is_valid_id(rest[0]):
            raise BadRequest(f"{here} has an invalid id {rest[0]!r}", code="value",
                             expression=(here,))
        entry.rid = rest[0]
        entry.kind = "update" if method == "PUT" else "delete"
    elif entry.query:
        entry.kind = "conditional-update" if method == "PUT" else "conditional-delete"
    else:
        raise BadRequest(f"{here} of a {method} needs an id or search criteria, got {url!r}",
                         code="invalid", expression=(here,))


def _read_kind(rest: list[str], here: str, url: str) -> str:
    if not rest:
        return "search-type"
    if rest == ["_search"]:
        return "search-type"
    if rest == ["_history"]:
        return "history-type"
    if len(rest) == 1:
        return "read"
    if len(rest) == 2 and rest[1] == "_history":
        return "history-instance"
    if len(rest) == 3 and rest[1] == "_history":
        return "vread"
    raise BadRequest(f"{here} {url!r} is not a read, search or history", code="not-supported",
                     expression=(here,))


def at_entry(err: EhrError, entry_index: int, rtype: str | None, what: str = "") -> EhrError:
    """The same error, its issues pointed at ``Bundle.entry[i]`` (and into its resource)."""
    here = f"Bundle.entry[{entry_index}]"
    issues: list[Issue] = []
    for issue in err.issues:
        paths = tuple(_under_entry(p, here, rtype) for p in issue.expression) or (here,)
        text = issue.diagnostics
        if what and not text.startswith(here):
            text = f"{here} ({what}): {text}"
        issues.append(Issue(issue.code, text, issue.severity, paths))
    moved = type(err)(issues=issues, headers=err.headers)
    return moved


def _under_entry(path: str, here: str, rtype: str | None) -> str:
    if path.startswith("Bundle.entry["):
        return path
    if rtype and (path == rtype or path.startswith(rtype + ".") or path.startswith(rtype + "[")):
        return f"{here}.resource{path[len(rtype):]}"
    return f"{here}.{path}" if path else here
