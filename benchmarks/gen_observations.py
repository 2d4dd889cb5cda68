"""Write NDJSON of synthetic vital-sign Observations plus the Patients they reference.

Usage::

    python benchmarks/gen_observations.py --observations 10000 --per-patient 100 OUT.ndjson

Patients come first in the file (so every reference resolves once loaded in order), then the
Observations: heart rate (LOINC 8867-4, ``/min``), blood-pressure panel (85354-9 with systolic
8480-6 and diastolic 8462-4 components, ``mm[Hg]``) and body weight (29463-7, ``kg``), all with
UCUM units, spread over two years of dates. Every resource carries a deterministic ``id`` (so
``ehr load`` stores it with update-as-create and a reload is idempotent). The output only depends
on the arguments and ``--seed``: ``bench-p0`` is always the first patient and has the same number
of Observations whatever ``--observations`` is, which is what the 10 k vs 200 k comparison needs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs", "display": "Vital Signs"}]}
FAMILIES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
            "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
            "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
            "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
            "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
            "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
            "Roberts"]
GIVEN_F = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
           "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Sandra", "Ashley", "Emily"]
GIVEN_M = ["James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
           "Thomas", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven"]
# Observations span this window; the benchmark query uses date=ge<START + 1 year>.
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730


def patient_id(index: int) -> str:
    return f"bench-p{index}"


def make_patient(index: int, rng: random.Random) -> dict[str, Any]:
    female = rng.random() < 0.5
    birth = datetime(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 65))
    return {
        "resourceType": "Patient",
        "id": patient_id(index),
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1",
                        "value": f"{900000000 + index}"}],
        "active": True,
        "name": [{"use": "official", "family": rng.choice(FAMILIES),
                  "given": [rng.choice(GIVEN_F if female else GIVEN_M)]}],
        "telecom": [{"system": "phone", "value": f"555-{rng.randrange(1000, 9999)}",
                     "use": "home"}],
        "gender": "female" if female else "male",
        "birthDate": birth.strftime("%Y-%m-%d"),
        "address": [{"line": [f"{rng.randrange(1, 999)} Main St"], "city": "Springfield",
                     "state": "IL", "postalCode": f"62{rng.randrange(700, 799)}",
                     "country": "US"}],
    }


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _coding(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def make_observation(obs_id: str, patient: str, kind: int, when: datetime,
                     rng: random.Random) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [CATEGORY],
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issued": (when + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    if kind == 0:
        base["code"] = _coding("8867-4", "Heart rate")
        base["valueQuantity"] = _quantity(float(rng.randrange(52, 110)), "beats/minute", "/min")
    elif kind == 1:
        base["code"] = _coding("85354-9", "Blood pressure panel with all children optional")
        base["component"] = [
            {"code": _coding("8480-6", "Systolic blood pressure"),
             "valueQuantity": _quantity(float(rng.randrange(100, 165)), "mmHg", "mm[Hg]")},
            {"code": _coding("8462-4", "Diastolic blood pressure"),
             "valueQuantity": _quantity(float(rng.randrange(60, 100)), "mmHg", "mm[Hg]")},
        ]
    else:
        base["code"] = _coding("29463-7", "Body weight")
        base["valueQuantity"] = _quantity(round(rng.uniform(45.0, 130.0), 1), "kg", "kg")
    return base


def write(out: TextIO, observations: int, per_patient: int, seed: int) -> tuple[int, int]:
    """Write the Patients then the Observations; return (patients, observations) written."""
    patients = max(1, -(-observations // per_patient))
    rng = random.Random(seed)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for index in range(patients):
        out.write(dumps(make_patient(index, rng)) + "\n")
    written = 0
    for index in range(patients):
        # A per-patient generator keeps bench-p0's Observations identical across file sizes.
        prng = random.Random(f"{seed}-{index}")
        for n in range(min(per_patient, observations - written)):
            when = START + timedelta(days=prng.randrange(SPAN_DAYS),
                                     seconds=prng.randrange(8 * 3600, 18 * 3600))
            obs = make_observation(f"bench-o{index}-{n}", patient_id(index), n % 3, when, prng)
            out.write(dumps(obs) + "\n")
            written += 1
    return patients, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="NDJSON file to write ('-' for stdout)")
    parser.add_argument("--observations", "-n", type=int, default=10_000)
    parser.add_argument("--per-patient", type=int, default=100,
                        help="Observations per patient (the last patient may get fewer)")
    parser.add_argument("--seed", type=int, default=8867)
    args = parser.parse_args(argv)
    if args.observations < 1 or args.per_patient < 1:
        parser.error("--observations and --per-patient must be positive")
    if str(args.output) == "-":
        patients, written = write(sys.stdout, args.observations, args.per_patient, args.seed)
    else:
        with args.output.open("w", encoding="utf-8") as out:
            patients, written = write(out, args.observations, args.per_patient, args.seed)
    print(f"{args.output}: {patients} patients, {written} observations", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
