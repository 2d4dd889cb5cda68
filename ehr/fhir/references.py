"""The syntax of a resource's logical id and of ``Reference.reference`` strings.

Accepted forms: ``Type/id`` and ``Type/id/_history/vid`` with Type a known R4 type; absolute
http(s) URLs; ``urn:uuid:`` and ``urn:oid:`` (how transaction entries point at each other);
``#id`` naming a contained resource (``#`` alone, the container, only from inside a contained
resource); and ``Type?query`` only where the caller allows conditional references (transaction
entries, resolved by the transaction processor before storing).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ehr.fhir.resource_types import R4_RESOURCE_TYPES

ID_PATTERN = r"[A-Za-z0-9\-\.]{1,64}"
_ID = re.compile(ID_PATTERN)
_RELATIVE = re.compile(rf"([A-Z][A-Za-z]+)/({ID_PATTERN})(?:/_history/({ID_PATTERN}))?")
_UUID = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")
_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?(\S+)")
_WHITESPACE = re.compile(r"\s")


def is_valid_id(value: str) -> bool:
    """A FHIR logical id: 1 to 64 of letters, digits, '-' and '.'."""
    return _ID.fullmatch(value) is not None


def reference_problem(
    reference: str,
    *,
    contained_ids: frozenset[str] = frozenset(),
    inside_contained: bool = False,
    allow_conditional: bool = False,
) -> str | None:
    """Why a reference string is not acceptable, or None when it is."""
    if reference.startswith("#"):
        return _local_problem(reference[1:], contained_ids, inside_contained)
    relative = _RELATIVE.fullmatch(reference)
    if relative is not None:
        if relative.group(1) not in R4_RESOURCE_TYPES:
            return f"Unknown resource type {relative.group(1)!r} in reference {reference!r}"
        return None
    if reference.startswith(("http://", "https://")):
        parts = urlsplit(reference)
        if not parts.netloc or _WHITESPACE.search(reference):
            return f"Malformed absolute URL reference {reference!r}"
        return None
    if reference.startswith("urn:uuid:"):
        return None if _UUID.fullmatch(reference) else f"Malformed urn:uuid reference {reference!r}"
    if reference.startswith("urn:oid:"):
        return None if _OID.fullmatch(reference) else f"Malformed urn:oid reference {reference!r}"
    conditional = _CONDITIONAL.fullmatch(reference)
    if conditional is not None:
        if not allow_conditional:
            return (f"Conditional reference {reference!r} is only allowed in transaction "
                    "entries")
        if conditional.group(1) not in R4_RESOURCE_TYPES:
            return f"Unknown resource type {conditional.group(1)!r} in reference {reference!r}"
        return None
    return (f"Invalid reference {reference!r}: expected Type/id, Type/id/_history/vid, an "
            "absolute URL, urn:uuid:, urn:oid: or #contained-id")


def _local_problem(target: str, contained_ids: frozenset[str],
                   inside_contained: bool) -> str | None:
    if not target:
        return None if inside_contained else (
            "'#' refers to the container and is only allowed inside a contained resource")
    if target not in contained_ids:
        return f"Local reference '#{target}' does not name a contained resource"
    return None
