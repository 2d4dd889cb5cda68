"""Screening and outcome instruments, defined as data (one JSON file per instrument).

The files hold everything a clinician may need to correct without a code change: items, answer
sets, LOINC codes (``"verify": true`` where the reference saw them only in secondary sources),
scoring method, cut-off bands and the safety flags a response raises. ``resources`` turns them
into the FHIR Questionnaires and CodeSystems the service publishes; ``scoring`` and
``response_check`` read the same objects, so what is published is what is scored.
"""

from ehr.clinical.instruments.catalog import (
    BAND_SYSTEM,
    SCREENING_SYSTEM,
    AnswerOption,
    AnswerSet,
    Band,
    Group,
    Instrument,
    Item,
    by_key,
    by_url,
    codesystem_data,
    instruments,
)

__all__ = [
    "BAND_SYSTEM", "SCREENING_SYSTEM", "AnswerOption", "AnswerSet", "Band", "Group",
    "Instrument", "Item", "by_key", "by_url", "codesystem_data", "instruments",
]
