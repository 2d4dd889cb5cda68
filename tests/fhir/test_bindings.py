"""The generated required-binding table and the walker that checks resources against it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ehr.errors import Issue
from ehr.fhir.bindings import Codes, Scope, check_resource, load_rules

REPO = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    path = REPO / "scripts" / "gen_required_bindings.py"
    spec = importlib.util.spec_from_file_location("gen_required_bindings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def schema(fhir_data: Path) -> dict[str, Any]:
    return json.loads((fhir_data / "schema" / "fhir.schema.json").read_text("utf-8"))


def test_generated_file_is_up_to_date(schema: dict[str, Any]) -> None:
    gen = _generator()
    shipped = (REPO / "ehr" / "fhir" / "data" / "required_bindings.json").read_text("utf-8")
    assert gen.render(gen.build(schema)) == shipped


def test_every_schema_enum_is_in_the_table(schema: dict[str, Any]) -> None:
    rules = load_rules()
    for name, definition in schema["definitions"].items():
        for prop, spec in definition.get("properties", {}).items():
            enum = spec.get("enum") or spec.get("items", {}).get("enum")
            if enum:
                rule = rules[name][prop]
                assert isinstance(rule, Codes)
                assert rule.allowed == frozenset(enum)


def test_every_resource_type_is_walkable(schema: dict[str, Any]) -> None:
    rules = load_rules()
    for rtype in schema["discriminator"]["mapping"]:
        assert "meta" in rules[rtype]
        if "contained" in schema["definitions"][rtype]["properties"]:  # not Bundle, Binary...
            assert rules[rtype]["contained"] == "ResourceList"


def test_rules_are_loaded_once_and_codes_shared() -> None:
    rules = load_rules()
    assert load_rules() is rules
    assert rules["Patient"]["gender"] is rules["Patient_Contact"]["gender"]


def _expressions(issues: list[Issue]) -> list[str]:
    return [e for i in issues for e in i.expression]


def test_bad_codes_at_every_depth() -> None:
    resource = {
        "resourceType": "Patient",
        "gender": "banana",
        "contact": [{"gender": "female"}, {"gender": "nope"}],
        "extension": [{"url": "http://x", "valueQuantity": {"value": 1, "comparator": "~"}}],
        "_birthDate": {"extension": [{"url": "http://x", "valueQuantity": {"comparator": "!"}}]},
    }
    issues = check_resource(resource, "Patient")
    assert _expressions(issues) == [
        "Patient.gender",
        "Patient.contact[1].gender",
        "Patient.extension[0].valueQuantity.comparator",
        "Patient._birthDate.extension[0].valueQuantity.comparator",
    ]
    assert {i.code for i in issues} == {"code-invalid"}
    assert "male, female, other, unknown" in issues[0].diagnostics


def test_repeating_codes_are_checked_item_by_item() -> None:
    resource = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"},
                "category": ["food", "bogus", "medication"]}
    assert _expressions(check_resource(resource, "AllergyIntolerance")) == [
        "AllergyIntolerance.category[1]"
    ]


def test_nested_resources_dispatch_on_their_type() -> None:
    bundle = {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"request": {"method": "FETCH", "url": "Patient"},
             "resource": {"resourceType": "Patient", "gender": "f"}},
            {"resource": {"resourceType": "Observation", "status": "final",
                          "contained": [{"resourceType": "Patient", "gender": "m"}]}},
        ],
    }
    assert _expressions(check_resource(bundle, "Bundle")) == [
        "Bundle.entry[0].request.method",
        "Bundle.entry[0].resource.gender",
        "Bundle.entry[1].resource.contained[0].gender",
    ]
    params = {"resourceType": "Parameters",
              "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "gender": "x"}}]}
    assert _expressions(check_resource(params, "Parameters")) == [
        "Parameters.parameter[0].resource.gender"
    ]


def test_bad_nested_resources_are_named() -> None:
    resource = {"resourceType": "Patient", "contained": [
        {"resourceType": "Nope"}, {"id": "x"}, {"resourceType": "Resource"},
        {"resourceType": "EffectEvidenceSynthesis"},
        {"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]},
    ]}
    issues = check_resource(resource, "Patient")
    assert [(i.code, i.expression[0]) for i in issues] == [
        ("invalid", "Patient.contained[0].resourceType"),
        ("required", "Patient.contained[1]"),
        ("invalid", "Patient.contained[2].resourceType"),
        ("not-supported", "Patient.contained[3].resourceType"),
        ("structure", "Patient.contained[4].contained"),
    ]


def test_python_only_keys_are_unknown_elements() -> None:
    # fhir.resources accepts its Python field names; FHIR JSON does not have them.
    resource = {"resourceType": "Patient", "resource_type": "Patient", "fhir_comments": ["x"],
                "name": [{"family__ext": {"id": "a"}}]}
    issues = check_resource(resource, "Patient")
    assert [(i.code, i.expression[0]) for i in issues] == [
        ("structure", "Patient.resource_type"),
        ("structure", "Patient.fhir_comments"),
        ("structure", "Patient.name[0].family__ext"),
    ]


def test_wrong_shapes_are_left_to_the_model() -> None:
    resource = {"resourceType": "Observation", "status": 5, "component": "x",
                "category": [None, 3, {"coding": "x"}], "code": []}
    assert check_resource(resource, "Observation") == []


def test_references_are_visited_with_their_scope() -> None:
    seen: list[tuple[str, str, Scope]] = []

    def visit(ref: str, path: str, scope: Scope) -> Issue | None:
        seen.append((ref, path, scope))
        return Issue("invalid", ref, expression=(path,)) if ref == "bad" else None

    bundle = {
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {
            "resourceType": "Observation", "status": "final",
            "contained": [{"resourceType": "Patient", "id": "p",
                           "link": [{"type": "refer", "other": {"reference": "#"}}]}],
            "subject": {"reference": "#p"},
            "performer": [{"reference": "bad"}],
            # Expression.reference and similar uri elements are not references.
            "extension": [{"url": "http://x", "valueExpression": {"language": "text/fhirpath",
                                                                 "reference": "not a ref"}}],
        }}],
    }
    issues = check_resource(bundle, "Bundle", visit)
    assert _expressions(issues) == ["Bundle.entry[0].resource.performer[0].reference"]
    assert [(r, p, s.contained_ids, s.inside_contained) for r, p, s in seen] == [
        ("#", "Bundle.entry[0].resource.contained[0].link[0].other.reference",
         frozenset({"p"}), True),
        ("#p", "Bundle.entry[0].resource.subject.reference", frozenset({"p"}), False),
        ("bad", "Bundle.entry[0].resource.performer[0].reference", frozenset({"p"}), False),
    ]


def test_non_resource_input_gives_nothing() -> None:
    assert check_resource({"gender": "banana"}, "Patient") == []
    assert check_resource({"resourceType": "Nope", "gender": "x"}, "Nope") == []
