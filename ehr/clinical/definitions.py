"""Every definition resource the service ships (Questionnaires, CodeSystems), in one list.

``ehr db upgrade`` publishes them (``ehr.fhir.definitions_loader``); each feature contributes
its own resources here.
"""

from __future__ import annotations

from typing import Any

from ehr.clinical.eligibility_resources import eligibility_definitions
from ehr.clinical.instruments.resources import definition_resources


def shipped_definitions() -> list[dict[str, Any]]:
    """CodeSystems before the Questionnaires that use them; ids are stable canonical ids."""
    return [*definition_resources(), *eligibility_definitions()]
