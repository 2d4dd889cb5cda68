from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehr.dates import MAX_TIME, parse_range, period_range
from ehr.fhir.search.indexer import index_values, parse_reference
from ehr.fhir.search.text import normalise


def _example(fhir_data: Path, name: str) -> dict[str, Any]:
    return json.loads((fhir_data / "r4-examples" / name).read_text())


def test_patient_example_names_identifier_and_birthdate(fhir_data: Path) -> None:
    patient = _example(fhir_data, "Patient-example.json")
    values = index_values("Patient", patient)
    strings = {(p, v) for p, v, _ in values.strings}
    for name in patient["name"]:
        for given in name.get("given", []):
            assert ("given", normalise(given)) in strings
            assert ("name", normalise(given)) in strings
        if "family" in name:
            assert ("family", normalise(name["family"])) in strings
    ident = patient["identifier"][0]
    assert ("identifier", ident["system"], ident["value"], None) in values.tokens
    assert ("birthdate", *parse_range(patient["birthDate"])) in values.dates
    assert ("gender", None, patient["gender"], None) in values.tokens
    org = patient["managingOrganization"]["reference"]
    assert ("organization", *org.split("/"), None) in values.references
    phones = {c["value"] for c in patient["telecom"] if c.get("system") == "phone"}
    assert {t[2] for t in values.tokens if t[0] == "phone"} == phones
    assert ("deceased", None, "false", None) in values.tokens


def test_observation_blood_pressure_codes_date_subject(fhir_data: Path) -> None:
    obs = _example(fhir_data, "Observation-blood-pressure.json")
    values = index_values("Observation", obs)
    codes = {(t[1], t[2]) for t in values.tokens if t[0] == "code" and t[2]}
    assert codes == {(c["system"], c["code"]) for c in obs["code"]["coding"]}
    component_codes = {(t[1], t[2]) for t in values.tokens if t[0] == "component-code"}
    for comp in obs["component"]:
        for coding in comp["code"]["coding"]:
            assert (coding["system"], coding["code"]) in component_codes
    assert ("date", *parse_range(obs["effectiveDateTime"])) in values.dates
    ref_type, ref_id = obs["subject"]["reference"].split("/")
    assert ("subject", ref_type, ref_id, None) in values.references
    assert ("patient", ref_type, ref_id, None) in values.references
    quantities = {(q[0], q[1]) for q in values.quantities}
    for comp in obs["component"]:
        assert ("component-value-quantity", comp["valueQuantity"]["value"]) in quantities


def test_patient_param_only_indexes_patient_targets() -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Group/g1"}}
    refs = index_values("Observation", obs).references
    assert ("subject", "Group", "g1", None) in refs
    assert not [r for r in refs if r[0] == "patient"]


def test_choice_periods_timing_and_quantities() -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "effectivePeriod": {"start": "2021-03-01"},
           "valueQuantity": {"value": 5.4, "system": "http://unitsofmeasure.org",
                             "code": "mg", "unit": "milligram"}}
    values = index_values("Observation", obs)
    assert values.dates == [("date", parse_range("2021-03-01")[0], MAX_TIME)]
    assert values.quantities == [("value-quantity", 5.4, "http://unitsofmeasure.org", "mg",
                                  "milligram")]
    req = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
           "subject": {"reference": "Patient/p"},
           "dosageInstruction": [{"timing": {"event": ["2021-01-01"],
                                             "repeat": {"boundsPeriod": {"start": "2021-02-01",
                                                                         "end": "2021-02-03"}}}}]}
    dates = index_values("MedicationRequest", req).dates
    assert ("date", *parse_range("2021-01-01")) in dates
    assert ("date", *period_range("2021-02-01", "2021-02-03")) in dates


def test_unparseable_values_are_skipped_not_refused() -> None:
    cond = {"resourceType": "Condition", "subject": {"reference": "Patient/p"},
            "onsetString": "in childhood", "recordedDate": "not a date"}
    values = index_values("Condition", cond)
    assert values.dates == []


def test_reference_forms() -> None:
    assert parse_reference("Patient/1") == ("Patient", "1", None)
    assert parse_reference("Patient/1/_history/3") == ("Patient", "1", None)
    assert parse_reference("http://x.org/fhir/Patient/1") == ("Patient", "1",
                                                            "http://x.org/fhir/Patient/1")
    assert parse_reference("urn:uuid:abc") == (None, None, "urn:uuid:abc")
    assert parse_reference("#contained") == (None, None, None)
    assert parse_reference("Nonsense/1") == (None, None, None)
    canonical = parse_reference("http://x.org/Questionnaire/phq9|1.0")
    assert canonical == ("Questionnaire", "phq9", "http://x.org/Questionnaire/phq9")


def test_meta_tags_profiles_and_reference_identifiers() -> None:
    res = {"resourceType": "Encounter", "status": "finished",
           "meta": {"tag": [{"system": "s", "code": "t"}], "profile": ["http://p"],
                    "security": [{"system": "sec", "code": "R"}], "source": "src"},
           "subject": {"identifier": {"system": "mrn", "value": "42"}}}
    values = index_values("Encounter", res)
    assert ("_tag", "s", "t", None) in values.tokens
    assert ("_security", "sec", "R", None) in values.tokens
    assert ("subject:identifier", "mrn", "42", None) in values.tokens
    assert ("_profile", "http://p") in values.uris
    assert ("_source", "src") in values.uris


def test_every_example_indexes_without_error(fhir_data: Path) -> None:
    indexed = 0
    for path in sorted((fhir_data / "r4-examples").glob("*.json")):
        resource = json.loads(path.read_text())
        values = index_values(resource["resourceType"], resource)
        indexed += len(values.tokens) > 0 or len(values.strings) > 0
    assert indexed > 100
