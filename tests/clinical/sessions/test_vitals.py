"""``$record-vitals``: vital-signs profile conformance (against the official R4 examples),
alert Flags on both sides of the thresholds, who may record, and the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from session_clinic import NORMAL, Clinic, audited

from ehr.clinical.flags import flag_kind
from ehr.clinical.sessions.alerts import ALERT_KIND

VITALSIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Our measure -> the official R4 example of the same vital sign.
EXAMPLES = {"8867-4": "Observation-heart-rate.json", "9279-1": "Observation-respiratory-rate.json",
            "2708-6": "Observation-satO2.json", "8310-5": "Observation-body-temperature.json",
            "85354-9": "Observation-blood-pressure.json"}
PROFILES = {"8867-4": "heartrate", "9279-1": "resprate", "2708-6": "oxygensat",
            "8310-5": "bodytemp", "85354-9": "bp"}


def _loinc(concept: dict[str, Any]) -> list[str]:
    return [c["code"] for c in concept["coding"] if c["system"] == "http://loinc.org"]


def _units(obs: dict[str, Any]) -> list[tuple[str, str]]:
    holders = [obs, *obs.get("component", [])]
    return [(h["valueQuantity"]["system"], h["valueQuantity"]["code"]) for h in holders
            if "valueQuantity" in h]


def _resources(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p["resource"] for p in body["parameter"] if p["name"] == name]


def test_vital_signs_profile_conformance(clinic: Clinic, fhir_data: Path) -> None:
    enc = clinic.session()
    body = clinic.recorded(enc, 5, temperature=36.6, **NORMAL)
    observations = _resources(body, "observation")
    vitals = [o for o in observations if o["category"][0]["coding"][0]["code"] == "vital-signs"]
    assert {_loinc(o["code"])[0] for o in vitals} == set(EXAMPLES)
    for obs in vitals:
        code = _loinc(obs["code"])[0]
        official = json.loads((fhir_data / "r4-examples" / EXAMPLES[code]).read_text())
        # The profile's fixed parts, as the official example of that vital sign has them.
        assert obs["status"] == "final"
        assert {(c["system"], c["code"]) for c in obs["category"][0]["coding"]} == \
            {(CATEGORY, "vital-signs")} == \
            {(c["system"], c["code"]) for c in official["category"][0]["coding"]}
        assert set(_loinc(official["code"])) <= set(_loinc(obs["code"]))
        assert _units(obs) == _units(official)
        assert obs["subject"] == {"reference": f"Patient/{clinic.patient}"}
        assert obs["encounter"] == {"reference": f"Encounter/{enc['id']}"}
        assert obs["effectiveDateTime"].startswith(
            body["parameter"][0]["resource"]["effectiveDateTime"][:16])
        assert obs["meta"]["profile"] == [VITALSIGNS,
                                          f"http://hl7.org/fhir/StructureDefinition/"
                                          f"{PROFILES[code]}"]
        if code == "85354-9":
            assert "valueQuantity" not in obs
            assert [_loinc(c["code"]) for c in obs["component"]] == \
                [_loinc(c["code"]) for c in official["component"]][:2] == [["8480-6"],
                                                                           ["8462-4"]]
        else:
            assert "valueQuantity" in obs
    surveys = [o for o in observations if o["category"][0]["coding"][0]["code"] == "survey"]
    assert sorted(o["valueInteger"] for o in surveys) == [0, 5]
    # Stored as returned: read back, identical.
    for obs in observations:
        assert clinic.read(f"Observation/{obs['id']}")["code"] == obs["code"]


def test_not_obtainable_is_data_absent_reason(clinic: Clinic) -> None:
    enc = clinic.session()
    body = clinic.recorded(enc, 5, systolic=118, spo2="not-performed", heart_rate=66)
    observations = _resources(body, "observation")
    spo2 = next(o for o in observations if "2708-6" in _loinc(o["code"]))
    assert "valueQuantity" not in spo2
    assert spo2["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    bp = next(o for o in observations if "85354-9" in _loinc(o["code"]))
    assert bp["component"][1]["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    # Absent measures create nothing.
    assert len(observations) == 3


def test_bad_input_refused_without_writes(clinic: Clinic) -> None:
    enc = clinic.session()
    response = clinic.vitals(enc, 5, systolic=900, spo2="maybe", moaas=2.5)
    assert response.status_code == 422, response.text
    assert len(response.json()["issue"]) == 3
    assert clinic.vitals(enc, 5).status_code == 422  # nothing to record
    found = clinic.read(f"Observation?encounter=Encounter/{enc['id']}")
    assert found.get("total", len(found.get("entry", []))) == 0
    planned = clinic.session("planned")
    assert clinic.vitals(planned, 5, **NORMAL).status_code == 409


ALARMS = {"systolic": 181, "diastolic": 111, "spo2": 91, "heart_rate": 121, "moaas": 3}
QUIET = {"systolic": 180, "diastolic": 110, "spo2": 92, "heart_rate": 120, "moaas": 4}


def test_thresholds_raise_flags_both_sides(clinic: Clinic) -> None:
    enc = clinic.session()
    quiet = clinic.recorded(enc, 5, **QUIET)
    assert _resources(quiet, "alert") == []
    low_hr = clinic.recorded(enc, 6, heart_rate=50)
    assert _resources(low_hr, "alert") == []
    loud = clinic.recorded(enc, 10, **ALARMS)
    flags = _resources(loud, "alert")
    assert len(flags) == 5
    for flag in flags:
        assert flag_kind(flag) == ALERT_KIND and flag["status"] == "active"
        assert flag["encounter"] == {"reference": f"Encounter/{enc['id']}"}
        assert flag["subject"] == {"reference": f"Patient/{clinic.patient}"}
    texts = " ".join(f["code"]["text"] for f in flags)
    for words in ("Systolic BP 181", "Diastolic BP 111", "SpO2) 91", "Heart rate 121",
                  "MOAA/S 3"):
        assert words in texts
    slow = clinic.recorded(enc, 11, heart_rate=49)
    assert len(_resources(slow, "alert")) == 1
    stored = clinic.read(f"Flag?encounter=Encounter/{enc['id']}")
    assert len(stored["entry"]) == 6


@pytest.mark.parametrize(("who", "status"), [("nina", 200), ("doc", 200), ("tara", 403),
                                             ("cora", 403)])
def test_who_may_record(clinic: Clinic, who: str, status: int) -> None:
    enc = clinic.session()
    response = clinic.vitals(enc, 5, who=who, **NORMAL)
    assert response.status_code == status, response.text


def test_writes_audited(clinic: Clinic) -> None:
    enc = clinic.session()
    body = clinic.recorded(enc, 5, systolic=190, diastolic=90)
    obs = _resources(body, "observation")[0]
    flag = _resources(body, "alert")[0]
    assert ("nina", "Encounter", enc["id"]) in audited(clinic.engine, "operation:record-vitals")
    creates = audited(clinic.engine, "create")
    assert ("nina", "Observation", obs["id"]) in creates
    assert ("nina", "Flag", flag["id"]) in creates
