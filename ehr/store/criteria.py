"""The parsed form of a search, as the store executes it: plain data, no FHIR knowledge.

The REST layer turns query parameters into these values; ``search_sql`` turns them into SQL.
A list of criteria is an AND; ``AnyOf`` is an OR (comma-separated values of one parameter).
Every leaf names the index ``param`` it reads; the resource type comes from the query (or from
``Chain``/``Has`` for the resources they reach).

Date and quantity comparisons take the search value as a half-open range [low, high) and an
operator: ``eq`` (the value lies inside the range), ``ne``, ``gt``, ``lt``, ``ge``, ``le``,
``sa`` (starts after the range), ``eb`` (ends before it) and ``overlap`` (the parser's
expansion of ``ap``). See ``search_sql`` for their exact bound comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.sql.elements import ColumnElement

# A filter over the ``resource`` table (or an alias of it) that every row a search returns or
# counts must satisfy: the hook through which access control narrows searches.
Restriction = Callable[[Any], ColumnElement[bool]]

Op = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "overlap"]
IndexKind = Literal["string", "token", "date", "reference", "quantity", "uri"]


@dataclass(frozen=True, slots=True)
class StringMatch:
    param: str
    value: str  # normalised for "start"/"contains", verbatim for "exact"
    mode: Literal["start", "exact", "contains"] = "start"
    # For "exact": the normalised form too, so the lookup can use the index on ``value``.
    normalised: str | None = None


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """``code`` alone: any system; ``system`` set: that system; ``no_system``: system absent."""

    param: str
    code: str | None
    system: str | None = None
    no_system: bool = False


@dataclass(frozen=True, slots=True)
class TokenText:
    param: str
    text: str  # normalised


@dataclass(frozen=True, slots=True)
class DateMatch:
    param: str
    op: Op
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class QuantityMatch:
    """``code`` without ``system`` matches the code or the unit text."""

    param: str
    op: Op
    low: float
    high: float
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceMatch:
    """Type/id (``target_types`` empty: any type) or an absolute/canonical ``url``."""

    param: str
    target_id: str | None = None
    target_types: tuple[str, ...] = ()
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UriMatch:
    param: str
    uri: str
    mode: Literal["exact", "below", "above"] = "exact"


@dataclass(frozen=True, slots=True)
class Missing:
    param: str
    kind: IndexKind
    missing: bool


@dataclass(frozen=True, slots=True)
class IdMatch:
    rids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LastUpdatedMatch:
    op: Op
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class AnyOf:
    options: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Not:
    criterion: Criterion


@dataclass(frozen=True, slots=True)
class Chain:
    """Resources whose reference ``param`` points at a resource matching the criterion.

    ``targets`` holds one criterion per possible target type (they are ORed).
    """

    param: str
    targets: tuple[tuple[str, Criterion], ...]


@dataclass(frozen=True, slots=True)
class Has:
    """Resources referenced through ``param`` by a ``source_type`` resource matching it."""

    source_type: str
    param: str
    criterion: Criterion


@dataclass(frozen=True, slots=True)
class AllOf:
    criteria: tuple[Criterion, ...]


Criterion = (
    StringMatch | TokenMatch | TokenText | DateMatch | QuantityMatch | ReferenceMatch | UriMatch
    | Missing | IdMatch | LastUpdatedMatch | AnyOf | Not | Chain | Has | AllOf
)

SortKind = Literal["id", "lastUpdated", "string", "token", "date", "reference", "quantity", "uri"]


@dataclass(frozen=True, slots=True)
class SortKey:
    param: str
    kind: SortKind
    descending: bool = False


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    """``_include``/``_revinclude`` of ``source_type:param[:target_type]``; param None is ``*``."""

    source_type: str
    param: str | None
    target_type: str | None = None
