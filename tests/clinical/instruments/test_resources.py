"""The published instrument definitions: valid FHIR, canonical URLs under our base, LOINC
where the reference gives it, no item wording for copyrighted instruments; ``ehr db upgrade``'s
loader publishes them once (both databases)."""

from __future__ import annotations

from typing import Any

import pytest

from ehr.clinical.instruments import SCREENING_SYSTEM, instruments
from ehr.clinical.instruments.resources import definition_resources, questionnaire
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.fhir.definitions_loader import publish_definitions
from ehr.fhir.validation import validate_resource

LOINC = "http://loinc.org"
PANELS = {"phq-9": "44249-1", "gad-7": "69737-5", "pcl-5": "101697-1",
          "cssrs-screener": "93373-9", "audit": "72110-0", "audit-c": "72109-2",
          "dast-10": "82666-9"}
LOCAL = ("madrs", "qids-sr16", "cadss", "cadss-6", "moaas")


@pytest.mark.parametrize("resource", definition_resources(), ids=lambda r: r["id"])
def test_every_definition_is_valid_fhir(resource: dict[str, Any]) -> None:
    assert validate_resource(resource, expected_type=resource["resourceType"]) == []
    assert resource["url"].startswith(CANONICAL_BASE + "/")
    assert resource["version"]


def test_panels_are_loinc_or_local() -> None:
    for key, code in PANELS.items():
        assert questionnaire(instruments()[key])["code"] == [
            {"system": LOINC, "code": code, "display": instruments()[key].panel["display"]}]
    for key in LOCAL:
        assert questionnaire(instruments()[key])["code"][0]["system"] == SCREENING_SYSTEM


def test_phq9_items_carry_the_reference_loinc_codes() -> None:
    items = {i["linkId"]: i for i in questionnaire(instruments()["phq-9"])["item"]}
    assert [items[str(n)]["code"][0]["code"] for n in range(1, 10)] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
        "44253-3", "44260-8"]
    assert [o["valueCoding"]["code"] for o in items["1"]["answerOption"]] == [
        "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]


@pytest.mark.parametrize("key", ["dast-10", "madrs", "cadss"])
def test_copyrighted_instruments_ship_no_wording(key: str) -> None:
    q = questionnaire(instruments()[key])
    asked = [i for i in q["item"] if i["type"] != "display"]
    assert [i["text"] for i in asked] == [f"Item {n}" for n in range(1, len(asked) + 1)]
    assert not any("extension" in i for i in asked)
    assert "not shipped" in q["copyright"]


def test_cadss_short_form_uses_the_long_forms_item_numbers() -> None:
    q = questionnaire(instruments()["cadss-6"])
    assert [i["linkId"] for i in q["item"]] == ["1", "2", "6", "7", "15", "22"]


def test_loader_publishes_once(app: Any, client: Any, engine: Any) -> None:
    mine = definition_resources()
    first = publish_definitions(engine, app.state.pipeline, mine)
    assert (first.written, first.unchanged) == (len(mine), 0)
    again = publish_definitions(engine, app.state.pipeline, mine)
    assert (again.written, again.unchanged) == (0, len(mine))
    url = instruments()["phq-9"].url
    found = client.get(f"/fhir/Questionnaire?url={url}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["phq-9"]
    assert client.get("/fhir/CodeSystem/score-band").status_code == 200
