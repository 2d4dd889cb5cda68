from __future__ import annotations

import json
from pathlib import Path

from ehr.fhir.search.params import RESOURCE_TYPES, get_param, search_params_for


def test_resource_types_match_the_schema(fhir_data: Path) -> None:
    schema = json.loads((fhir_data / "schema" / "fhir.schema.json").read_text())
    assert frozenset(schema["discriminator"]["mapping"]) == RESOURCE_TYPES


def test_every_type_has_common_params() -> None:
    for rtype in RESOURCE_TYPES:
        names = {p.name for p in search_params_for(rtype)}
        assert {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"} <= names


def test_generic_patient_and_subject_params() -> None:
    ci = {p.name: p for p in search_params_for("ClinicalImpression")}
    assert ci["subject"].type == "reference"
    assert ci["patient"].only_targets and ci["patient"].targets == ("Patient",)
    assert get_param("Immunization", "patient") is not None
    assert get_param("Claim", "patient") is not None
    assert get_param("ExplanationOfBenefit", "patient") is not None
    assert get_param("DiagnosticReport", "patient").only_targets  # type: ignore[union-attr]
    assert get_param("CodeSystem", "patient") is None


def test_explicit_definitions() -> None:
    assert get_param("Observation", "value-quantity").type == "quantity"  # type: ignore[union-attr]
    ma_enc = get_param("MedicationAdministration", "encounter")
    ma_ctx = get_param("MedicationAdministration", "context")
    assert ma_enc is not None and ma_ctx is not None and ma_enc.paths == ma_ctx.paths
    assert get_param("Nonsense", "_id") is None
    assert [p.name for p in search_params_for(None)][:2] == ["_id", "_lastUpdated"]
    assert all(p.documentation for p in search_params_for("Patient"))
