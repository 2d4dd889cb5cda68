"""References between the entries of a transaction, and conditional references.

Only ``Reference.reference`` strings are touched (any ``"reference"`` key holding a string,
at any depth, contained resources included); narrative and ``Attachment.url`` are left alone.
Nested Bundles are skipped: their references point into their own entries, not into ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?(.+)")
_LOCAL_SCHEMES = ("urn:uuid:", "urn:oid:")
_RELATIVE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64}")

# One place a reference sits: the container holding the "reference" key and the path to it.
Site = tuple[dict[str, Any], tuple[str | int, ...]]


def reference_sites(resource: dict[str, Any]) -> Iterator[Site]:
    """Every object holding a ``reference`` string, with its path below the resource."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(resource, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if path and node.get("resourceType") == "Bundle":
                continue
            if isinstance(node.get("reference"), str):
                yield node, path
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, (*path, key)))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((value, (*path, i)))


def fhirpath(prefix: str, path: tuple[str | int, ...]) -> str:
    """``Bundle.entry[3].resource`` + ``("participant", 0, "individual")`` as FHIRPath text."""
    out = [prefix]
    for part in path:
        out.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(out)


def conditional_target(reference: str) -> tuple[str, str] | None:
    """``("Patient", "identifier=a|b")`` for ``Patient?identifier=a|b``, else None."""
    match = _CONDITIONAL.fullmatch(reference)
    return (match.group(1), match.group(2)) if match else None


def is_local(reference: str) -> bool:
    """A placeholder that only means something inside this Bundle (``urn:uuid:``/``urn:oid:``)."""
    return reference.startswith(_LOCAL_SCHEMES)


def base_of(full_url: str | None) -> str | None:
    """The service base of an absolute ``fullUrl`` ending in ``Type/id``, else None."""
    if not full_url or not full_url.startswith(("http://", "https://")):
        return None
    head, sep, tail = full_url.rstrip("/").rpartition("/")
    head2, sep2, _ = head.rpartition("/")
    if not sep or not sep2 or not tail:
        return None
    return head2


def rewrite(
    resource: dict[str, Any],
    identities: dict[str, str],
    own_base: str | None,
    on_unresolved: Callable[[str, tuple[str | int, ...]], str | None],
) -> int:
    """Rewrite every reference that names another entry's ``fullUrl`` to ``Type/id``.

    ``identities`` maps fullUrls (and, for absolute ones, nothing else) to the ``Type/id`` they
    resolved to. A relative ``Type/id`` inside an entry whose fullUrl is absolute is read
    against that base, as the spec's reference resolution rules say. ``on_unresolved`` is
    asked about local placeholders and conditional references that ``identities`` does not
    know; it returns the replacement or None to leave the reference as it is. Returns the
    number of references rewritten.
    """
    changed = 0
    for holder, path in list(reference_sites(resource)):
        reference: str = holder["reference"]
        target = identities.get(reference)
        if target is None and own_base and _RELATIVE.fullmatch(reference):
            target = identities.get(f"{own_base}/{reference}")
        if target is None and (is_local(reference) or conditional_target(reference)):
            target = on_unresolved(reference, path)
        if target is not None and target != reference:
            holder["reference"] = target
            changed += 1
    return changed
