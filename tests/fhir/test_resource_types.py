"""The R4 type list matches the official schema; model_class maps types to R4B models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehr.errors import NotFound
from ehr.fhir.resource_types import R4_RESOURCE_TYPES, has_model, model_class


def test_types_are_the_schema_discriminator(fhir_data: Path) -> None:
    schema = json.loads((fhir_data / "schema" / "fhir.schema.json").read_text("utf-8"))
    assert set(schema["discriminator"]["mapping"]) == R4_RESOURCE_TYPES
    assert len(R4_RESOURCE_TYPES) == 146


@pytest.mark.parametrize("rtype", ["Parameters", "Bundle", "OperationOutcome", "Patient"])
def test_infrastructure_types_are_known(rtype: str) -> None:
    assert rtype in R4_RESOURCE_TYPES
    cls = model_class(rtype)
    assert cls.get_resource_type() == rtype


def test_model_class_is_cached() -> None:
    assert model_class("Observation") is model_class("Observation")


@pytest.mark.parametrize("rtype", ["Nope", "", "Resource", "DomainResource", "patient",
                                   "__class__", "MedicinalProductDefinition"])
def test_unknown_types_are_not_found(rtype: str) -> None:
    # MedicinalProductDefinition is R4B only: the server speaks R4.
    with pytest.raises(NotFound, match="Unknown resource type") as caught:
        model_class(rtype)
    assert caught.value.status == 404
    assert not has_model(rtype)


@pytest.mark.parametrize("rtype", ["MedicinalProduct", "EffectEvidenceSynthesis",
                                   "SubstancePolymer"])
def test_r4_types_without_r4b_model_are_refused(rtype: str) -> None:
    assert rtype in R4_RESOURCE_TYPES
    with pytest.raises(NotFound, match="Unknown resource type"):
        model_class(rtype)
    assert not has_model(rtype)
