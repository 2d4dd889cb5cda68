"""validate_resource / ensure_valid / validate_json_body: the official examples pass, every kind
of bad input is named by its FHIRPath expression, and the HTTP status matches the FHIR REST spec.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ehr.errors import BadRequest, EhrError, Issue, Unprocessable
from ehr.fhir.validation import ensure_valid, validate_json_body, validate_resource

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-data" / "r4-examples"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


def _load(fhir_data: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fhir_data / "r4-examples" / name).read_text("utf-8"))
    return data


def _where(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.code, i.expression[0] if i.expression else "") for i in issues]


@pytest.fixture
def bp(fhir_data: Path) -> dict[str, Any]:
    return _load(fhir_data, "Observation-blood-pressure.json")


# -- the official examples ----------------------------------------------------------------------


def test_all_examples_are_there(fhir_data: Path) -> None:
    assert len(list((fhir_data / "r4-examples").glob("*.json"))) == 308
    assert len(EXAMPLE_NAMES) == 308


@pytest.mark.parametrize("name", EXAMPLE_NAMES or [
    pytest.param("missing", marks=pytest.mark.skip(reason=f"{EXAMPLES} not found"))])
def test_official_example_is_valid(fhir_data: Path, name: str) -> None:
    data = _load(fhir_data, name)
    assert validate_resource(data) == []
    rtype, rid = data["resourceType"], data["id"]
    ensure_valid(data, expected_type=rtype, expected_id=rid, require_id=True)


def test_synthea_bundles_need_conditional_references(fhir_data: Path) -> None:
    for path in sorted((fhir_data / "synthea").glob("*.json")):
        bundle = json.loads(path.read_text("utf-8"))
        assert validate_resource(bundle, allow_conditional_references=True) == []
        refused = validate_resource(bundle)
        assert refused, path.name
        assert {i.code for i in refused} == {"invalid"}
        assert all("Conditional reference" in i.diagnostics for i in refused)
        assert refused[0].expression[0].startswith("Bundle.entry[")


# -- required bindings --------------------------------------------------------------------------


def test_bogus_observation_status(bp: dict[str, Any]) -> None:
    bp["status"] = "bogus"
    issues = validate_resource(bp)
    assert _where(issues) == [("code-invalid", "Observation.status")]
    assert "'bogus'" in issues[0].diagnostics


def test_patient_gender_banana() -> None:
    assert _where(validate_resource({"resourceType": "Patient", "gender": "banana"})) == [
        ("code-invalid", "Patient.gender")]


def test_bad_code_in_backbone_elements(bp: dict[str, Any]) -> None:
    bp["component"][1]["valueQuantity"]["comparator"] = "~"
    assert _where(validate_resource(bp)) == [
        ("code-invalid", "Observation.component[1].valueQuantity.comparator")]
    patient = {"resourceType": "Patient", "contact": [{"gender": "male"}, {"gender": "m"}]}
    assert _where(validate_resource(patient)) == [("code-invalid", "Patient.contact[1].gender")]


def test_bad_bundle_request_method() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:9c1b5f3c-7c4e-4bd2-9f0e-0a4c0c2f5e11",
         "resource": {"resourceType": "Patient"},
         "request": {"method": "FETCH", "url": "Patient"}}]}
    assert _where(validate_resource(bundle)) == [
        ("code-invalid", "Bundle.entry[0].request.method")]


def test_bad_code_in_contained_resource() -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "contained": [{"resourceType": "Patient", "id": "p", "gender": "x"}],
           "subject": {"reference": "#p"}}
    assert _where(validate_resource(obs)) == [
        ("code-invalid", "Observation.contained[0].gender")]


def test_unknown_contained_type_is_named_not_a_crash() -> None:
    # fhir.resources raises KeyError on this one; the walk names the element.
    patient = {"resourceType": "Patient", "contained": [{"resourceType": "Nope", "id": "n"}]}
    assert _where(validate_resource(patient)) == [
        ("invalid", "Patient.contained[0].resourceType")]
    patient["contained"] = [{"resourceType": 5}]
    assert _where(validate_resource(patient)) == [("required", "Patient.contained[0]")]


# -- the model pass -----------------------------------------------------------------------------


def test_unknown_element(bp: dict[str, Any]) -> None:
    bp["component"][0]["colour"] = "red"
    bp["foo"] = 1
    issues = validate_resource(bp)
    assert sorted(_where(issues)) == [("structure", "Observation.component[0].colour"),
                                      ("structure", "Observation.foo")]


def test_wrong_primitive_type(bp: dict[str, Any]) -> None:
    bp["component"][1]["code"]["coding"][0]["system"] = 5
    assert _where(validate_resource(bp)) == [
        ("value", "Observation.component[1].code.coding[0].system")]


def test_bad_dates() -> None:
    patient = {"resourceType": "Patient", "birthDate": "2020-02-30"}
    assert _where(validate_resource(patient)) == [("value", "Patient.birthDate")]
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "effectiveDateTime": "2012-13-45", "issued": "2020-01-01"}
    assert _where(validate_resource(obs)) == [("value", "Observation.effectiveDateTime"),
                                              ("value", "Observation.issued")]


def test_missing_required_elements() -> None:
    assert _where(validate_resource({"resourceType": "Observation", "status": "final"})) == [
        ("required", "Observation.code")]
    # fhir.resources checks required primitives in a model validator, which pydantic runs only
    # once every element is well formed: a missing status shows up after the rest is fixed.
    assert _where(validate_resource({"resourceType": "Observation", "code": {"text": "x"}})) == [
        ("required", "Observation.status")]


def test_structure_errors() -> None:
    patient = {"resourceType": "Patient", "name": {"family": "x"}, "maritalStatus": "M"}
    assert sorted(_where(validate_resource(patient))) == [
        ("structure", "Patient.maritalStatus"), ("structure", "Patient.name")]
    # Choice exclusivity is a model validator too (see above).
    both = {"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020"}
    issues = validate_resource(both)
    assert _where(issues) == [("structure", "Patient")]
    assert "deceasedBoolean" in issues[0].diagnostics


def test_client_meta_is_accepted(bp: dict[str, Any]) -> None:
    bp["meta"] = {"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z"}
    assert validate_resource(bp) == []


def test_decimals_from_the_body_are_accepted(bp: dict[str, Any]) -> None:
    bp["component"][0]["valueQuantity"]["value"] = Decimal("107.50")
    assert validate_resource(bp) == []


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", [
    "Patient/example", "Patient/a-b.c", "Patient/1/_history/2", "Patient/" + "a" * 64,
    "http://example.org/fhir/Patient/1", "https://x.org/Patient/1",
    "urn:uuid:9c1b5f3c-7c4e-4bd2-9f0e-0a4c0c2f5e11", "urn:oid:1.2.840.113619.6.197",
])
def test_good_references(ref: str) -> None:
    patient = {"resourceType": "Patient", "generalPractitioner": [{"reference": ref}]}
    assert validate_resource(patient) == []


@pytest.mark.parametrize("ref", [
    "Foo/1", "Patient/a b", "Patient/" + "a" * 65, "Patient/1/_history/", "Patient",
    "patient/1", "/Patient/1", "http://", "http://x y", "ftp://x.org/Patient/1",
    "urn:uuid:123", "urn:oid:abc", "#", "Patient/1/extra", " Patient/1",
])
def test_bad_references(ref: str) -> None:
    patient = {"resourceType": "Patient", "generalPractitioner": [{"display": "x"},
                                                                 {"reference": ref}]}
    issues = validate_resource(patient)
    assert _where(issues) == [("invalid", "Patient.generalPractitioner[1].reference")]


def test_local_reference_must_name_a_contained_resource() -> None:
    patient = {"resourceType": "Patient",
               "contained": [{"resourceType": "Organization", "id": "org"}],
               "managingOrganization": {"reference": "#missing"}}
    assert _where(validate_resource(patient)) == [
        ("not-found", "Patient.managingOrganization.reference")]
    patient["managingOrganization"] = {"reference": "#org"}
    assert validate_resource(patient) == []


def test_contained_resource_may_point_at_its_container() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "contained": [
        {"resourceType": "RelatedPerson", "id": "rp", "patient": {"reference": "#"}}]}
    assert validate_resource(patient) == []


def test_conditional_reference_only_when_allowed() -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient?identifier=http://x|1"}}
    assert _where(validate_resource(obs)) == [("invalid", "Observation.subject.reference")]
    assert validate_resource(obs, allow_conditional_references=True) == []
    obs["subject"] = {"reference": "Nope?identifier=1"}
    assert _where(validate_resource(obs, allow_conditional_references=True)) == [
        ("invalid", "Observation.subject.reference")]


def test_uri_elements_named_reference_are_not_references() -> None:
    issue = {"resourceType": "DetectedIssue", "status": "final", "reference": "urn:isbn:12345"}
    assert validate_resource(issue) == []


# -- ids and types (400 vs 422) -----------------------------------------------------------------


def test_id_syntax() -> None:
    assert _where(validate_resource({"resourceType": "Patient", "id": "a" * 65})) == [
        ("value", "Patient.id")]
    assert _where(validate_resource({"resourceType": "Patient", "id": "a b"})) == [
        ("value", "Patient.id")]
    assert validate_resource({"resourceType": "Patient", "id": "A-z.09" + "a" * 58}) == []


def test_id_mismatch_is_400() -> None:
    patient = {"resourceType": "Patient", "id": "one"}
    issues = validate_resource(patient, expected_id="two")
    assert _where(issues) == [("invalid", "Patient.id")]
    with pytest.raises(BadRequest) as caught:
        ensure_valid(patient, expected_type="Patient", expected_id="two", require_id=True)
    assert caught.value.status == 400
    assert _where(caught.value.issues) == [("invalid", "Patient.id")]


def test_missing_id_when_required_is_400() -> None:
    with pytest.raises(BadRequest) as caught:
        ensure_valid({"resourceType": "Patient"}, expected_id="x", require_id=True)
    assert _where(caught.value.issues) == [("required", "Patient.id")]
    ensure_valid({"resourceType": "Patient"}, expected_id="x")


def test_type_mismatch_is_400_and_keeps_content_issues() -> None:
    patient = {"resourceType": "Patient", "gender": "banana"}
    with pytest.raises(BadRequest) as caught:
        ensure_valid(patient, expected_type="Observation")
    assert _where(caught.value.issues) == [("invalid", "Patient.resourceType"),
                                           ("code-invalid", "Patient.gender")]


@pytest.mark.parametrize(("body", "code"), [
    ([], "structure"), ("Patient", "structure"), (None, "structure"),
    ({"id": "x"}, "required"), ({"resourceType": 5}, "required"),
])
def test_not_a_resource_is_400(body: object, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        ensure_valid(body)
    assert [i.code for i in caught.value.issues] == [code]


@pytest.mark.parametrize(("rtype", "code"), [
    ("Nope", "invalid"), ("Resource", "invalid"), ("MedicinalProduct", "not-supported")])
def test_unknown_body_type_is_422(rtype: str, code: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        ensure_valid({"resourceType": rtype})
    assert caught.value.status == 422
    assert _where(caught.value.issues) == [(code, "resourceType")]


def test_invalid_content_is_422_with_every_issue(bp: dict[str, Any]) -> None:
    bad = copy.deepcopy(bp)
    bad["status"] = "bogus"
    bad["subject"] = {"reference": "Patient?name=x"}
    bad["colour"] = "red"
    with pytest.raises(Unprocessable) as caught:
        ensure_valid(bad, expected_type="Observation")
    assert sorted(_where(caught.value.issues)) == [
        ("code-invalid", "Observation.status"), ("invalid", "Observation.subject.reference"),
        ("structure", "Observation.colour")]
    outcome = caught.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert len(outcome["issue"]) == 3
    ensure_valid(bp, expected_type="Observation")


def test_absurd_nesting_is_refused_not_crashed() -> None:
    ext: dict[str, Any] = {"url": "http://x", "valueString": "a"}
    for _ in range(400):
        ext = {"url": "http://x", "extension": [ext]}
    issues = validate_resource({"resourceType": "Patient", "extension": [ext]})
    assert _where(issues) == [("too-costly", "Patient")]


# -- request bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"resourceType": "Patient"', "line 1, column 27"),
    (b'{"resourceType": "Patient"} x', "line 1, column 29"),
    (b'{\n  "resourceType": "Patient",\n  "id": \n}', "line 4, column 1"),
    (b"", "line 1, column 1"),
    (b'{"a": NaN}', "Malformed JSON"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b"[" * 100_000, "nested too deeply"),
    (b'[{"resourceType": "Patient"}]', "not an array"),
    (b'"Patient"', "not a string"),
    (b"null", "not null"),
    (b'{"name": "Ren\xe9"}', "not valid UTF-8 (byte 13)"),
    (b"\xff\xfe{}", "not valid UTF-8"),
])
def test_malformed_bodies_are_400(raw: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        validate_json_body(raw)
    assert caught.value.status == 400
    assert [i.code for i in caught.value.issues] == ["structure"]
    assert fragment in caught.value.diagnostics


def test_body_keeps_decimal_precision() -> None:
    body = validate_json_body(
        b'\xef\xbb\xbf{"resourceType": "Observation", "valueQuantity": {"value": 1.50}}')
    value = body["valueQuantity"]["value"]
    assert isinstance(value, Decimal)
    assert str(value) == "1.50"


def test_body_then_resource(fhir_data: Path) -> None:
    raw = (fhir_data / "r4-examples" / "Observation-blood-pressure.json").read_bytes()
    body = validate_json_body(raw)
    assert validate_resource(body, expected_type="Observation") == []
    assert isinstance(body["component"][0]["valueQuantity"]["value"], Decimal | int)


def test_every_failure_is_an_ehr_error() -> None:
    for raw in (b"{", b"[]", b"\x80"):
        with pytest.raises(EhrError):
            validate_json_body(raw)
