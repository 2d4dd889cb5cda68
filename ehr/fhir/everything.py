"""``Patient/{id}/$everything``: one patient's record, within the caller's permissions.

The patient must be readable by the caller (404 otherwise, like a read). The compartment is
read through the same access clause as a search, page by page on a keyset cursor; every
page is audited with the patient. Psychotherapy and SUD counselling notes never leave here,
not even for their author (``ehr.clinical.notes.exclusion``): they are not part of the record.
"""

from __future__ import annotations

import base64

from ehr.audit.events import AccessEvent, labels_in
from ehr.clinical.notes.exclusion import excluded_from_bulk_text
from ehr.dates import parse_range
from ehr.errors import BadRequest
from ehr.fhir import bundles
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.fhir.reader import REDISCLOSURE_ISSUE, part2_text
from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.store import compartment

DEFAULT_COUNT = 100
MAX_COUNT = 1000
_PARAMS = frozenset({"_count", "_since", "_type", "_cursor", "start", "end"})


def _cursor(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
    except ValueError as exc:
        raise BadRequest("Invalid _cursor: use the next link as given",
                         expression=("_cursor",)) from exc


def _encode(pk: int) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def _count(value: str | None) -> int:
    if value is None:
        return DEFAULT_COUNT
    if not value.isdigit() or int(value) < 1:
        raise BadRequest("_count must be a positive whole number", expression=("_count",))
    return min(int(value), MAX_COUNT)


def parse_since(value: str | None) -> int | None:
    """``_since`` as a time: resources changed at or after its start."""
    if not value:
        return None
    try:
        return parse_range(value)[0] - 1
    except ValueError as exc:
        raise BadRequest(f"Invalid _since {value!r}: use a FHIR instant",
                         expression=("_since",)) from exc


def parse_types(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in names if t not in R4_RESOURCE_TYPES]
    if unknown:
        raise BadRequest(f"Unknown resource type(s) in _type: {', '.join(unknown)}",
                         expression=("_type",))
    return names


def everything(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    assert rid is not None
    params = ex.search_params()
    unknown = sorted({k for k, _ in params} - _PARAMS)
    if unknown:
        raise BadRequest(f"$everything does not support: {', '.join(unknown)}",
                         code="not-supported", expression=tuple(unknown))
    given = dict(params)
    if "start" in given or "end" in given:
        raise BadRequest("$everything start/end (care dates) are not supported; use _since",
                         code="not-supported", expression=("start",))
    limit = _count(given.get("_count"))
    since = parse_since(given.get("_since"))
    types = parse_types(given.get("_type"))
    ex.reader.read("Patient", rid)  # 404 for a patient the caller may not see
    restriction = ex.pipeline.guard.restriction(ex.session, ex.ctx, None)
    rows = compartment.page(ex.session, rtypes=types, patients=(rid,), since=since,
                            restriction=restriction, after_pk=_cursor(given.get("_cursor")),
                            limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    kept = [r for r in rows if not excluded_from_bulk_text(r.content)]
    entries = [f'{{"fullUrl":"{ex.base}/{r.rtype}/{r.rid}","resource":{r.content},'
               f'"search":{{"mode":"match"}}}}' for r in kept]
    if any(part2_text(r.content) for r in kept):
        entries.append(bundles.outcome_entry([REDISCLOSURE_ISSUE]))
    links = bundles.paging_links(ex.base, f"Patient/{rid}/$everything", params,
                                 _encode(rows[-1].pk) if more else None, None)
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:everything", "Patient", rid, patients=(rid,),
        detail={"returned": len(kept), "withheld": len(rows) - len(kept)},
        protected=tuple(sorted({label for r in kept for label in labels_in(r.content)}))))
    return FhirResponse(200, bundles.envelope("searchset", None, links, entries))


def register_everything_operation(registry: OperationRegistry) -> None:
    registry.register(Operation(
        "everything", everything, types=("Patient",), levels=("instance",),
        methods=("GET", "POST"),
        definition="http://hl7.org/fhir/OperationDefinition/Patient-everything",
        documentation="The patient's record within the caller's permissions, paged "
                      "(_count, _since, _type); psychotherapy and SUD counselling notes are "
                      "never included."))
