"""The dose calculator's arithmetic: what it states always passes the server's mg/kg check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ehr.clinical.dosing.protocol import load_protocol
from ehr.clinical.dosing.vitals import Weight
from ehr.web.session_dose import LotOption, Order, plan_from

PROTOCOL = load_protocol()
IM = PROTOCOL.routes["im"]
ORDER = Order("o1", PROTOCOL.drugs["ketamine"], IM, None, {"coding": []})


def lot(concentration: Decimal) -> LotOption:
    return LotOption("L1", "ketamine", None, "x mg/mL", concentration, dt.date(2099, 1, 1),
                     Decimal(10_000), False)


@given(per_kg=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("1.5"), places=2),
       kg=st.decimals(min_value=Decimal("30"), max_value=Decimal("200"), places=1),
       concentration=st.sampled_from([Decimal(10), Decimal(50), Decimal(100)]))
def test_calculated_dose_matches_what_the_server_recomputes(per_kg: Decimal, kg: Decimal,
                                                            concentration: Decimal) -> None:
    plan = plan_from({"per_kg": str(per_kg)}, [ORDER], [lot(concentration)], "w",
                     Weight(kg, 0))
    assert plan.mg is not None and plan.ml is not None and plan.stated_per_kg is not None
    assert abs(plan.mg - per_kg * kg) <= Decimal("0.05")
    # The dosing gate recomputes mg / weight and refuses a difference above the tolerance.
    assert abs(plan.stated_per_kg - plan.mg / kg) <= PROTOCOL.mg_per_kg_tolerance
    assert abs(plan.ml * concentration - plan.mg) <= concentration * Decimal("0.005")
    limits = [IM.max_mg, (IM.max_mg_per_kg or Decimal(0)) * kg]
    assert plan.maximum_mg == min(m.quantize(Decimal("0.1")) for m in limits if m is not None)


def test_no_dose_typed_probes_with_the_lowest_usual_dose() -> None:
    plan = plan_from({}, [ORDER], [lot(Decimal(50))], "w", Weight(Decimal(70), 0))
    assert not plan.entered
    assert IM.usual is not None and plan.mg == (IM.usual[0] * 70).quantize(Decimal("0.1"))
    refused = plan_from({"per_kg": "-1"}, [ORDER], [lot(Decimal(50))], "w",
                        Weight(Decimal(70), 0))
    assert "per_kg" in refused.errors and refused.mg is None
