"""SMART on FHIR scopes: parsing (v2 and v1), normalising and intersecting.

A v2 scope is ``context/Type.perms`` with context ``patient``, ``user`` or ``system``, Type a
resource type or ``*`` and perms a subset of ``cruds`` (create, read, update, delete, search).
v1 suffixes map onto v2: ``read`` -> ``rs``, ``write`` -> ``cud``, ``*`` -> ``cruds``.
Scopes that carry no data access (``openid``, ``fhirUser``, ``launch``...) are tolerated and
never granted data. v2 fine-grained scopes (``...rs?category=...``) are parsed but not granted
(SMART lets a server grant less than asked).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ehr.errors import BadRequest

PERMISSIONS = "cruds"
CONTEXTS = ("patient", "user", "system")
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# Accepted and ignored: launch context, identity and refresh-token requests.
TOLERATED = frozenset({"openid", "fhirUser", "profile", "offline_access", "online_access",
                       "launch", "launch/patient", "launch/encounter"})

_SCOPE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})"
    r"\.(?P<perms>read|write|\*|[cruds]{1,5})(?P<query>\?\S*)?$"
)
MAX_SCOPE_STRING = 4096


class InvalidScope(BadRequest):
    """A scope string is malformed (maps to OAuth ``invalid_scope``)."""


@dataclass(frozen=True, order=True)
class Scope:
    context: str
    resource_type: str  # a FHIR type or "*"
    permissions: str  # canonical order, subset of "cruds"
    query: str = ""  # v2 fine-grained constraint, e.g. "?category=vital-signs"

    def __str__(self) -> str:
        return f"{self.context}/{self.resource_type}.{self.permissions}{self.query}"

    def allows(self, resource_type: str, permission: str) -> bool:
        return (self.resource_type in ("*", resource_type) and permission in self.permissions
                and not self.query)


def _canonical(perms: Iterable[str]) -> str:
    wanted = set(perms)
    return "".join(p for p in PERMISSIONS if p in wanted)


def parse_scope(text: str) -> Scope | None:
    """One scope token; ``None`` for tolerated non-data scopes; InvalidScope otherwise."""
    if text in TOLERATED or text.startswith("launch/"):
        return None
    match = _SCOPE.match(text)
    if match is None:
        raise InvalidScope(f"malformed scope {text!r}")
    perms = match["perms"]
    if perms in V1_PERMISSIONS:
        perms = V1_PERMISSIONS[perms]
    elif len(set(perms)) != len(perms):
        raise InvalidScope(f"repeated permission in scope {text!r}")
    return Scope(match["ctx"], match["type"], _canonical(perms), match["query"] or "")


@dataclass(frozen=True)
class ScopeSet:
    """A normalised set of data scopes: one entry per (context, type), wildcards absorbing."""

    scopes: frozenset[Scope] = frozenset()

    @classmethod
    def of(cls, scopes: Iterable[Scope]) -> ScopeSet:
        return cls(frozenset(normalise(scopes)))

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> ScopeSet:
        return cls.of(parse_scopes(text))

    def __bool__(self) -> bool:
        return bool(self.scopes)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.scopes))

    def __str__(self) -> str:
        return " ".join(str(s) for s in sorted(self.scopes))

    def strings(self) -> frozenset[str]:
        return frozenset(str(s) for s in self.scopes)

    def allows(self, context: str, resource_type: str, permission: str) -> bool:
        return any(s.context == context and s.allows(resource_type, permission)
                   for s in self.scopes)

    def union(self, other: ScopeSet) -> ScopeSet:
        return ScopeSet.of([*self.scopes, *other.scopes])

    def intersect(self, ceiling: ScopeSet) -> ScopeSet:
        """What of ``self`` the ``ceiling`` permits (fine-grained scopes are not granted)."""
        granted: list[Scope] = []
        for want in self.scopes:
            if want.query:
                continue
            for limit in ceiling.scopes:
                if limit.context != want.context or limit.query:
                    continue
                if limit.resource_type not in ("*", want.resource_type) and \
                        want.resource_type != "*":
                    continue
                rtype = want.resource_type if limit.resource_type == "*" else limit.resource_type
                perms = _canonical(set(want.permissions) & set(limit.permissions))
                if perms:
                    granted.append(Scope(want.context, rtype, perms))
        return ScopeSet.of(granted)


def parse_scopes(text: str | Iterable[str]) -> list[Scope]:
    """Every data scope in a space-separated string (or tokens); tolerated ones are skipped."""
    if isinstance(text, str):
        if len(text) > MAX_SCOPE_STRING:
            raise InvalidScope("scope string too long")
        tokens: Iterable[str] = text.split()
    else:
        tokens = text
    return [s for s in (parse_scope(t) for t in tokens) if s is not None]


def normalise(scopes: Iterable[Scope]) -> list[Scope]:
    """Merge permissions per (context, type, query); drop what a wildcard already covers."""
    merged: dict[tuple[str, str, str], set[str]] = {}
    for s in scopes:
        merged.setdefault((s.context, s.resource_type, s.query), set()).update(s.permissions)
    out: list[Scope] = []
    for (ctx, rtype, query), perms in merged.items():
        if rtype != "*":
            perms = perms - merged.get((ctx, "*", ""), set())
        if perms:
            out.append(Scope(ctx, rtype, _canonical(perms), query))
    return sorted(out)
