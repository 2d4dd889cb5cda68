"""The protocol file: shipped defaults, a site override, refusal of unusable files, and the
mg/kg arithmetic of the maximum (property-based)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr.clinical.dosing.administration import Dose
from ehr.clinical.dosing.gates import Gatekeeper
from ehr.clinical.dosing.protocol import ProtocolError, load_protocol, parse_protocol
from ehr.clinical.dosing.rules import register_dosing_rules
from ehr.config import Settings
from ehr.store.hooks import Change, RuleRegistry

SHIPPED = Path(__file__).resolve().parents[3] / "ehr/clinical/dosing/protocol.json"


def test_shipped_defaults_follow_the_reference() -> None:
    p = load_protocol()
    assert {r.key: (r.snomed, r.max_mg_per_kg, r.max_mg) for r in p.routes.values()} == {
        "iv": ("47625008", Decimal("1.0"), None),
        "im": ("78421000", Decimal("1.0"), Decimal(100)),
        "intranasal": ("46713006", None, Decimal(84)),
        "sublingual": ("37839007", None, Decimal(400)),
        "oral": ("26643006", None, Decimal(300))}
    assert p.window_minutes == 60 and p.weight_max_age_days == 30
    assert p.warn_sessions_per_7_days == 2
    bp = p.measurements["bp"]
    assert (bp.above, bp.diastolic_above) == (Decimal(180), Decimal(110))
    assert (p.measurements["hr"].below, p.measurements["hr"].above) == (Decimal(50),
                                                                         Decimal(120))
    assert p.drug_by_code("rxnorm", "6130") is p.drugs["ketamine"]
    assert p.drug_by_code("ndc", "50458-028-02") is p.drugs["esketamine"]
    assert p.drug_by_name("Spravato 84 mg") is p.drugs["esketamine"]
    assert p.drug_by_name("esketamine") is p.drugs["esketamine"]
    # The [verify] items are marked in the data, for a clinician to confirm.
    assert p.drugs["ketamine"].rxnorm[0].verify


def test_a_site_protocol_replaces_the_defaults(tmp_path: Path, settings: Settings) -> None:
    data = json.loads(SHIPPED.read_text())
    data["routes"]["oral"]["max_mg"] = 200
    path = tmp_path / "site-dosing.json"
    path.write_text(json.dumps(data))
    rules = register_dosing_rules(RuleRegistry(), settings.model_copy(
        update={"dosing_protocol_file": path}), lambda: 0)
    assert rules.protocol.routes["oral"].max_mg == Decimal(200)


@pytest.mark.parametrize("breaking", [
    lambda d: d["routes"]["iv"].pop("max_mg_per_kg"),
    lambda d: d["routes"]["oral"].update(max_mg=None),
    lambda d: d["routes"]["im"].update(mode="per-dose"),
    lambda d: d["routes"]["im"].update(drugs=["heroin"]),
    lambda d: d["sessions"].pop("min_interval_hours"),
    lambda d: d["pre_dose"]["measurements"]["hr"].update(missing="ignore"),
    lambda d: d["routes"]["im"].update(max_mg=-1),
])
def test_an_unusable_protocol_is_refused(breaking: object) -> None:
    data = json.loads(SHIPPED.read_text())
    breaking(data)  # type: ignore[operator]
    with pytest.raises(ProtocolError):
        parse_protocol(data)


@settings(max_examples=300, deadline=None)
@given(kg=st.decimals(min_value=30, max_value=200, places=1),
       mg=st.decimals(min_value=1, max_value=250, places=1))
def test_iv_maximum_is_exactly_1_mg_per_kg(kg: Decimal, mg: Decimal) -> None:
    p = load_protocol()
    gate = Gatekeeper(p, verifier=None)  # type: ignore[arg-type]
    change = Change("create", "MedicationAdministration", "x", {}, None)
    stated = (mg / kg).quantize(Decimal("0.0001"))
    dose = Dose(route=p.routes["iv"], mg=mg, stated_mg_per_kg=stated)
    gate._per_kg(change, dose, mg, kg)
    refused = [i for i in change.issues if i.severity == "error"]
    assert bool(refused) == (mg > kg * Decimal("1.0")), (mg, kg, refused)
    off = Dose(route=p.routes["iv"], mg=mg, stated_mg_per_kg=stated + Decimal("0.02"))
    change = Change("create", "MedicationAdministration", "x", {}, None)
    gate._per_kg(change, off, mg, kg)
    assert any("does not match" in i.diagnostics for i in change.issues)
