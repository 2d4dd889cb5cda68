"""What bulk disclosures leave out: psychotherapy notes and SUD counselling notes.

``Patient/$everything`` and Bulk Data ``$export`` must call ``excluded_from_bulk`` on every
resource they are about to emit (after the access filter, which already hides these records
from most callers): the author of a psychotherapy note may read it one by one, but it never
leaves in a bulk disclosure (45 CFR 164.508(a)(2); 42 CFR Part 2 treats SUD counselling notes
the same way).
"""

from __future__ import annotations

from typing import Any

import simplejson

from ehr.clinical.notes.kinds import PART2_LABELS, PSYCHOTHERAPY_LABEL, security_codes

# Resource types that hold counselling notes; a Part 2 label on them marks a SUD counselling
# note, which Part 2 protects like a psychotherapy note.
NOTE_TYPES = frozenset({"DocumentReference", "Composition"})
# For SQL filters: a resource with any of these ``_security`` codes may be excluded.
BULK_EXCLUDED_LABELS = (PSYCHOTHERAPY_LABEL, *PART2_LABELS)


def excluded_from_bulk(resource: dict[str, Any]) -> bool:
    """True for a record $everything and $export must not include."""
    labels = security_codes(resource)
    if PSYCHOTHERAPY_LABEL in labels:
        return True  # the notes, and their signatures' Provenances, which carry the label
    return resource.get("resourceType") in NOTE_TYPES and bool(labels & set(PART2_LABELS))


def excluded_from_bulk_text(content: str | None) -> bool:
    """The same decision on stored canonical JSON, without parsing it when no label occurs
    (an export streams many resources; most carry no security label at all)."""
    if not content or '"security"' not in content:
        return False
    loaded = simplejson.loads(content)
    return isinstance(loaded, dict) and excluded_from_bulk(loaded)
