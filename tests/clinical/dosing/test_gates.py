"""Each gate on both sides of its boundary (defaults of the shipped protocol)."""

from __future__ import annotations

import pytest

from clinical.dosing.world import DAY, HOUR, MINUTE, Clinic, errors, warnings

NURSE = "nurse"


def _chart(clinic: Clinic, body: dict, ok: bool) -> list[str]:
    response = clinic.post(body, as_role=NURSE, expect=None)
    assert response.status_code == (201 if ok else 422), response.text
    return warnings(response) if ok else errors(response)


@pytest.mark.parametrize(("sbp", "dbp", "ok"), [
    (180, 80, True), (181, 80, False), (120, 110, True), (120, 111, False)])
def test_pre_dose_blood_pressure_threshold(clinic: Clinic, now: int, sbp: int, dbp: int,
                                           ok: bool) -> None:
    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 10 * MINUTE, sbp=sbp, dbp=dbp)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), ok)
    if not ok:
        assert any("blood pressure" in e and "not above" in e for e in found), found


@pytest.mark.parametrize(("hr", "ok"), [(50, True), (49, False), (120, True), (121, False)])
def test_pre_dose_heart_rate_limits(clinic: Clinic, now: int, hr: int, ok: bool) -> None:
    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 10 * MINUTE, hr=hr)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), ok)
    if not ok:
        assert any(e.startswith("pre-dose heart rate is") for e in found), found


def test_the_newest_reading_counts_not_the_best(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 40 * MINUTE)
    clinic.vitals(now - 10 * MINUTE, sbp=195)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), False)
    assert any("195" in e for e in found), found


@pytest.mark.parametrize(("minutes", "ok"), [(60, True), (61, False)])
def test_vitals_must_be_within_60_minutes_before_the_dose(clinic: Clinic, now: int,
                                                         minutes: int, ok: bool) -> None:
    weight = clinic.weight(70, now - 2 * HOUR)
    clinic.vitals(now - minutes * MINUTE)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), ok)
    if not ok:
        assert any("no systolic blood pressure" in e for e in found), found
        assert any("no heart rate" in e for e in found), found


def test_vitals_after_the_dose_do_not_count(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - 2 * HOUR)
    clinic.vitals(now - 2 * MINUTE)
    found = _chart(clinic, clinic.dose(35, now - 10 * MINUTE, weight=weight, per_kg=0.5),
                   False)
    assert any("no heart rate" in e for e in found), found


def test_missing_spo2_and_rr_only_warn(clinic: Clinic, now: int) -> None:
    from clinical.dosing.world import _observation

    weight = clinic.weight(70, now - HOUR)
    subject = {"reference": f"Patient/{clinic.patient}"}
    clinic.create(_observation(subject, "85354-9", now - 5 * MINUTE, components=[
        ("8480-6", 130, "mm[Hg]"), ("8462-4", 85, "mm[Hg]")]))
    clinic.create(_observation(subject, "8867-4", now - 5 * MINUTE, value=(80, "/min")))
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), True)
    assert any("oxygen saturation" in w for w in found), found
    assert any("respiratory rate" in w for w in found), found


def test_low_spo2_refuses(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 5 * MINUTE, spo2=91)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), False)
    assert any("oxygen saturation is 91" in e for e in found), found


def test_separate_systolic_and_diastolic_observations_count(clinic: Clinic, now: int) -> None:
    from clinical.dosing.world import _observation

    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 30 * MINUTE)
    subject = {"reference": f"Patient/{clinic.patient}"}
    clinic.create(_observation(subject, "8462-4", now - 5 * MINUTE, value=(115, "mm[Hg]")))
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), False)
    assert any("diastolic blood pressure is 115" in e for e in found), found


@pytest.mark.parametrize(("age", "ok"), [(30 * DAY, True), (30 * DAY + MINUTE, False)])
def test_weight_no_older_than_30_days(clinic: Clinic, now: int, age: int, ok: bool) -> None:
    weight = clinic.weight(70, now - age)
    clinic.vitals(now - 10 * MINUTE)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), ok)
    if ok:
        assert any("not recorded on the day" in w for w in found), found
    else:
        assert any("not a weight from the 30 days" in e for e in found), found


def test_weight_based_dose_needs_the_weight_and_the_stated_mg_per_kg(clinic: Clinic,
                                                                       now: int) -> None:
    weight = clinic.weight(70, now - HOUR)
    clinic.vitals(now - 10 * MINUTE)
    found = _chart(clinic, clinic.dose(35, now), False)
    assert any("needs the weight used" in e for e in found), found
    found = _chart(clinic, clinic.dose(35, now, weight=weight), False)
    assert any("must state the mg/kg" in e for e in found), found
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.6), False)
    assert any("does not match" in e for e in found), found


def test_another_patients_weight_is_refused(clinic: Clinic, now: int) -> None:
    other = clinic.make_patient()
    weight = clinic.weight(70, now - HOUR, patient=other)
    clinic.vitals(now - 10 * MINUTE)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), False)
    assert any("another patient's weight" in e for e in found), found


def test_a_newer_weight_is_pointed_out(clinic: Clinic, now: int) -> None:
    old = clinic.weight(70, now - 3 * HOUR)
    clinic.weight(72, now - HOUR)
    clinic.vitals(now - 10 * MINUTE)
    found = _chart(clinic, clinic.dose(35, now, weight=old, per_kg=0.5), True)
    assert any("more recent weight" in w for w in found), found


# (route, weight kg or None, mg allowed, mg refused)
MAXIMA = [
    ("iv", 70, 70, 70.5),  # 1.0 mg/kg
    ("im", 80, 80, 81),  # 1.0 mg/kg
    ("im", 120, 100, 101),  # 100 mg absolute (0.84 mg/kg)
    ("intranasal", None, 84, 85),
    ("sublingual", None, 400, 401),
    ("oral", None, 300, 301),
]


@pytest.mark.parametrize(("route", "kg", "allowed", "refused"), MAXIMA,
                         ids=[f"{m[0]}-{m[2]}" for m in MAXIMA])
def test_protocol_maximum_per_route(clinic: Clinic, now: int, route: str, kg: int | None,
                                    allowed: float, refused: float) -> None:
    clinic.vitals(now - 10 * MINUTE)
    weight = clinic.weight(kg, now - HOUR) if kg else None

    def body(mg: float) -> dict:
        return clinic.dose(mg, now, route=route, weight=weight,
                           per_kg=round(mg / kg, 4) if kg else None)

    found = _chart(clinic, body(refused), False)
    assert any("above the protocol maximum" in e for e in found), found
    _chart(clinic, body(allowed), True)


def test_interval_boundary_and_minimum(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - 4 * DAY)
    first = now - 3 * DAY
    clinic.vitals(first - 10 * MINUTE)
    _chart(clinic, clinic.dose(35, first, weight=weight, per_kg=0.5), True)
    too_soon = first + 36 * HOUR - MINUTE
    clinic.vitals(too_soon - 10 * MINUTE)
    found = _chart(clinic, clinic.dose(35, too_soon, weight=weight, per_kg=0.5), False)
    assert any("less than 36 hours" in e for e in found), found
    just_enough = first + 36 * HOUR
    _chart(clinic, clinic.dose(35, just_enough, weight=weight, per_kg=0.5), True)


def test_a_third_session_in_7_days_warns(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - 5 * DAY)
    times = [now - 4 * DAY, now - 2 * DAY, now]
    found: list[list[str]] = []
    for at in times:
        clinic.vitals(at - 10 * MINUTE)
        found.append(_chart(clinic, clinic.dose(35, at, weight=weight, per_kg=0.5), True))
    sessions = [[w for w in f if "in 7 days" in w] for f in found]
    assert sessions[0] == [] and sessions[1] == []
    assert sessions[2] and "dose 3 in 7 days" in sessions[2][0]


def test_entered_in_error_doses_do_not_count_for_intervals(clinic: Clinic, now: int) -> None:
    weight = clinic.weight(70, now - 2 * DAY)
    earlier = now - 12 * HOUR
    clinic.vitals(earlier - 10 * MINUTE)
    body = clinic.dose(35, earlier, weight=weight, per_kg=0.5)
    rid = clinic.create(body, as_role=NURSE)
    clinic.vitals(now - 10 * MINUTE)
    _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), False)
    fixed = {**body, "id": rid, "status": "entered-in-error"}
    put = clinic.http.put(f"/fhir/MedicationAdministration/{rid}", json=fixed,
                          headers={**clinic.users[NURSE]})
    assert put.status_code == 200, put.text
    _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5), True)


def test_ineligible_patient_is_refused(clinic: Clinic, now: int) -> None:
    patient = clinic.make_patient()
    encounter = clinic.make_session(patient)
    clinic.vitals(now - 10 * MINUTE, patient=patient)
    weight = clinic.weight(70, now - HOUR, patient=patient)
    order = clinic.order("iv", patient=patient)
    found = _chart(clinic, clinic.dose(35, now, weight=weight, per_kg=0.5, patient=patient,
                                       encounter=encounter, order=order), False)
    assert any("eligibility is 'none'" in e for e in found), found


def test_a_blocking_flag_is_refused(clinic: Clinic, ready: str, now: int) -> None:
    flag = clinic.blocking_flag()
    found = _chart(clinic, clinic.dose(35, now, weight=ready, per_kg=0.5), False)
    assert any(f"Flag/{flag}" in e for e in found), found


def test_dose_in_the_future_is_refused(clinic: Clinic, ready: str, now: int) -> None:
    found = _chart(clinic, clinic.dose(35, now + 10 * MINUTE, weight=ready, per_kg=0.5), False)
    assert any("in the future" in e for e in found), found


def test_session_and_order_must_fit(clinic: Clinic, ready: str, now: int) -> None:
    other = clinic.make_patient()
    their_session = clinic.make_session(other)
    their_order = clinic.order("iv", patient=other)
    found = _chart(clinic, clinic.dose(35, now, weight=ready, per_kg=0.5,
                                       encounter=their_session, order=their_order), False)
    assert any("another patient's session" in e for e in found), found
    assert any("another patient's order" in e for e in found), found
    small_order = clinic.order("iv", mg=30)
    found = _chart(clinic, clinic.dose(35, now, weight=ready, per_kg=0.5, order=small_order),
                   False)
    assert any("more than the 30 mg ordered" in e for e in found), found
    im_order = clinic.order("im")
    found = _chart(clinic, clinic.dose(35, now, weight=ready, per_kg=0.5, order=im_order),
                   False)
    assert any("does not order the intravenous" in e for e in found), found


def test_ledger_gate_unknown_lot_and_insufficient_stock(clinic: Clinic, ready: str,
                                                        now: int) -> None:
    found = _chart(clinic, clinic.dose(35, now, weight=ready, per_kg=0.5, lot="NO-SUCH"), False)
    assert any("ledger:" in e and "NO-SUCH" in e for e in found), found


def test_every_failure_is_listed_in_one_answer(clinic: Clinic, now: int) -> None:
    patient = clinic.make_patient()
    clinic.blocking_flag(patient)
    encounter = clinic.make_session(patient)
    order = clinic.order("iv", patient=patient)
    weight = clinic.weight(70, now - 40 * DAY, patient=patient)
    body = clinic.dose(200, now, weight=weight, per_kg=200 / 70, patient=patient,
                       encounter=encounter, order=order, lot="NO-SUCH")
    del body["dosage"]["rateQuantity"]
    found = _chart(clinic, body, False)
    expected = ["eligibility is", "blocks dosing", "no systolic blood pressure", "no heart rate",
                "not a weight from the 30 days", "ledger:", "rateQuantity"]
    for text in expected:
        assert any(text in e for e in found), (text, found)
    assert len(found) >= 7
