"""Alert thresholds (protocol data) on both sides of every bound, and the protocol defaults
matching the clinical reference (section 3)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.clinical.sessions.alerts import breaches
from ehr.clinical.sessions.protocol import DEFAULT_PATH, default_protocol, parse_protocol

# (measure, last value without an alert, first value with one) per the reference's defaults.
EDGES = [("systolic", 180, 181), ("diastolic", 110, 111), ("spo2", 92, 91),
         ("heart-rate", 50, 49), ("heart-rate", 120, 121), ("moaas", 4, 3)]


@pytest.mark.parametrize(("measure", "quiet", "alarm"), EDGES)
def test_each_threshold_both_sides(measure: str, quiet: float, alarm: float) -> None:
    protocol = default_protocol()
    assert breaches({measure: quiet}, protocol) == []
    found = breaches({measure: alarm}, protocol)
    assert [b.measure for b in found] == [measure]


def test_defaults_are_the_reference_values() -> None:
    protocol = default_protocol()
    assert protocol.threshold("systolic").above == 180  # type: ignore[union-attr]
    assert protocol.threshold("diastolic").above == 110  # type: ignore[union-attr]
    assert protocol.threshold("spo2").below == 92  # type: ignore[union-attr]
    hr = protocol.threshold("heart-rate")
    assert hr is not None and (hr.below, hr.above) == (50, 120)
    assert protocol.threshold("moaas").at_most == 3  # type: ignore[union-attr]
    assert protocol.named("esketamine-nasal").min_observation_minutes == 120
    assert protocol.named("iv-infusion").during_infusion_every == 10
    assert protocol.named("iv-infusion").after_dose_every == 15
    assert protocol.named("esketamine-nasal").after_dose_at == (40,)
    assert protocol.rems_due_days == 7
    assert protocol.route("46713006").name == "esketamine-nasal"
    assert protocol.route(None, ("2201625",)).name == "esketamine-nasal"
    assert protocol.route("47625008").name == "iv-infusion"
    assert protocol.route("26643006").name == "default"


def test_thresholds_are_data() -> None:
    raw = json.loads(DEFAULT_PATH.read_text())
    raw["alert_thresholds"]["systolic"] = {"above": 160}
    protocol = parse_protocol(raw)
    assert [b.measure for b in breaches({"systolic": 161}, protocol)] == ["systolic"]
    assert breaches({"systolic": 160}, protocol) == []


@given(sbp=st.floats(20, 350), dbp=st.floats(10, 250), spo2=st.floats(30, 100),
       hr=st.floats(10, 300), moaas=st.integers(0, 5))
def test_breach_iff_outside(sbp: float, dbp: float, spo2: float, hr: float,
                            moaas: int) -> None:
    found = {b.measure for b in breaches({"systolic": sbp, "diastolic": dbp, "spo2": spo2,
                                          "heart-rate": hr, "moaas": moaas},
                                         default_protocol())}
    expected = {m for m, bad in (("systolic", sbp > 180), ("diastolic", dbp > 110),
                                 ("spo2", spo2 < 92), ("heart-rate", hr < 50 or hr > 120),
                                 ("moaas", moaas <= 3)) if bad}
    assert found == expected
