"""The definition resources of the eligibility feature that ``ehr db upgrade`` publishes:
the checklist Questionnaire and the CodeSystems of our own eligibility codes."""

from __future__ import annotations

from typing import Any

from ehr.clinical.eligibility import (
    DECISION_CODE,
    ELIGIBILITY_SYSTEM,
    RULE_KIND_SYSTEM,
    RULE_SYSTEM,
    STATUS_DISPLAY,
    STATUS_SYSTEM,
)
from ehr.clinical.eligibility_protocol import default_protocol
from ehr.clinical.screening_checklist import ITEM_SYSTEM, ITEMS, checklist_questionnaire

PUBLISHER = "ehr (ketamine-assisted therapy record service)"


def _codesystem(url: str, title: str, concepts: list[tuple[str, str]],
                version: str = "1.0.0") -> dict[str, Any]:
    name = url.rsplit("/", 1)[-1]
    return {
        "resourceType": "CodeSystem", "id": name, "url": url, "version": version,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title,
        "status": "active", "publisher": PUBLISHER, "caseSensitive": True,
        "content": "complete", "count": len(concepts),
        "concept": [{"code": c, "display": d} for c, d in concepts],
    }


def eligibility_definitions() -> list[dict[str, Any]]:
    protocol = default_protocol()
    return [
        _codesystem(ELIGIBILITY_SYSTEM, "Eligibility observations",
                    [(DECISION_CODE, "Eligibility for ketamine-assisted therapy")]),
        _codesystem(STATUS_SYSTEM, "Eligibility decision status", list(STATUS_DISPLAY.items())),
        _codesystem(RULE_KIND_SYSTEM, "Eligibility rule kinds",
                    [("hard-stop", "Hard stop (not eligible)"),
                     ("needs-review", "Needs physician review")]),
        _codesystem(RULE_SYSTEM, "Eligibility protocol rules",
                    [(r.id, r.text) for r in protocol.rules], protocol.version or "1.0.0"),
        _codesystem(ITEM_SYSTEM, "Medical screening checklist items",
                    [(i.link_id, i.text) for i in ITEMS.values()]),
        checklist_questionnaire(),
    ]
