"""``GET /fhir/Patient/{id}/$scores?instrument=...`` (issue 5 item 5): the score series with
dates, values and bands, through the read path's access control, audited. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from clinical.screening_clinic import Clinic, make_clinic, phq9_answers, response


@pytest.fixture
def clinic(app: Any, client: Any, bearer_header: Any) -> Clinic:
    return make_clinic(app, client, bearer_header)


def series(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in body["parameter"]:
        if p["name"] == "score":
            out.append({part["name"]: next(v for k, v in part.items() if k.startswith("value"))
                        for part in p["part"]})
    return out


def scores(clinic: Clinic, instrument: str = "phq-9", who: str = "doc",
           patient: str | None = None) -> Any:
    return clinic.client.get(
        f"/fhir/Patient/{patient or clinic.patient}/$scores?instrument={instrument}",
        headers=clinic.headers[who])


def test_series_is_dated_banded_and_oldest_first(clinic: Clinic) -> None:
    clinic.submit("phq-9", phq9_answers(18), authored="2026-03-01T10:00:00Z")
    first = clinic.submit("phq-9", phq9_answers(22), authored="2026-01-10T10:00:00Z")
    clinic.submit("phq-9", phq9_answers(8), authored="2026-05-01T10:00:00Z")
    clinic.submit("gad-7", {str(i): 1 for i in range(1, 8)})  # another instrument
    retracted = clinic.submit("phq-9", phq9_answers(3), authored="2026-04-01T10:00:00Z")
    body = {**response("phq-9", phq9_answers(3), clinic.patient, status="entered-in-error"),
            "id": retracted}
    assert clinic.client.put(f"/fhir/QuestionnaireResponse/{retracted}", json=body,
                             headers=clinic.headers["tara"]).status_code == 200
    answer = scores(clinic)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["resourceType"] == "Parameters"
    assert out["parameter"][0] == {"name": "instrument", "valueString": "phq-9"}
    assert out["parameter"][1]["valueCoding"]["code"] == "44261-6"
    points = series(out)
    assert [(p["date"][:10], p["value"]["value"], p["band"]["code"]) for p in points] == [
        ("2026-01-10", 22, "severe"), ("2026-03-01", 18, "moderately-severe"),
        ("2026-05-01", 8, "mild")]
    assert [p.get("change") for p in points] == [None, -4, -10]
    assert points[0]["observation"]["reference"] == (
        "Observation/" + clinic.score_of(first)["id"])


def test_cssrs_series_gives_levels(clinic: Clinic) -> None:
    clinic.submit("cssrs-screener", {"1": True, "2": False, "6": False})
    points = series(scores(clinic, "cssrs-screener").json())
    assert [p["value"]["code"] for p in points] == ["low-risk"]


def test_access_follows_the_read_path(clinic: Clinic) -> None:
    clinic.submit("phq-9", phq9_answers(10))
    assert scores(clinic, who="nina").status_code == 200  # nurse on the care team
    assert len(series(scores(clinic, who="tara").json())) == 1
    assert scores(clinic, who="far").status_code == 404  # physician outside the team
    assert scores(clinic, who="cora").status_code == 403  # compliance reads no Patient


def test_unknown_instrument_is_a_bad_request(clinic: Clinic) -> None:
    refused = scores(clinic, "phq-99")
    assert refused.status_code == 400
    assert "phq-9" in refused.json()["issue"][0]["diagnostics"]
    assert clinic.client.get(f"/fhir/Patient/{clinic.patient}/$scores",
                             headers=clinic.headers["doc"]).status_code == 400


def test_scores_read_is_audited(clinic: Clinic) -> None:
    clinic.submit("phq-9", phq9_answers(10))
    assert scores(clinic).status_code == 200
    records = [r for r in clinic.audit() if r["actor_id"] == "doc"]
    operation = [r for r in records if r["interaction"] == "operation:scores"]
    assert len(operation) == 1 and operation[0]["rid"] == clinic.patient
    assert clinic.patient in operation[0]["body"]["patients"]
    assert any(r["interaction"] == "search-type" and r["rtype"] == "Observation"
               for r in records)
    denied = scores(clinic, who="far")
    assert denied.status_code == 404
    assert any(r["actor_id"] == "far" and r["outcome"] != "success" for r in clinic.audit())
