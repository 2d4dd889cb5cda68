"""String normalisation shared by the indexer and the query parser.

FHIR string search is case- and accent-insensitive, so both sides are folded to the same form:
NFKD decomposition with combining marks dropped, then ``casefold``. Normalised values are cut to
``MAX_INDEXED`` characters because B-tree index entries have a size limit on PostgreSQL; a search
prefix is cut the same way, so a long prefix can only over-match, never miss.
"""

from __future__ import annotations

import unicodedata

MAX_INDEXED = 200


def normalise(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = " ".join(stripped.casefold().split())
    return folded[:MAX_INDEXED]
