"""A small clinic for the screening tests: a patient with a care team (tokens for each role)
and QuestionnaireResponses built from answer values for any shipped instrument."""

from __future__ import annotations

import json
from typing import Any

from clinic_staff import FHIR_JSON, TeamClinic, care_team, staff_headers
from sqlalchemy import text

from ehr.clinical.instruments import by_key
from ehr.clinical.instruments.resources import answer_items

# token subject -> role; "far" is a physician outside the patient's care team.
STAFF = {"doc": "physician", "nina": "nurse", "tara": "therapist", "cora": "compliance",
         "far": "physician"}
OFF_TEAM = {"far", "cora"}


def response(key: str, answers: dict[str, Any], patient: str, *, status: str = "completed",
             authored: str = "2026-01-05T10:00:00Z", encounter: str | None = None,
             version: str | None = None) -> dict[str, Any]:
    """A response to instrument ``key``: ``answers`` maps link ids to points (or yes/no)."""
    instrument = by_key(key)
    assert instrument is not None
    out: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{instrument.url}|{version or instrument.version}",
        "status": status, "subject": {"reference": f"Patient/{patient}"},
        "authored": authored, "item": answer_items(instrument, answers)}
    if encounter:
        out["encounter"] = {"reference": encounter}
    return out


def phq9_answers(total: int = 0, item9: int = 0) -> dict[str, int]:
    """PHQ-9 answers with ``total`` points over items 1-8 and ``item9`` on item 9."""
    out, left = {}, total - item9
    for i in range(1, 9):
        out[str(i)] = min(3, left)
        left -= out[str(i)]
    assert left == 0
    out["9"] = item9
    return out


class Clinic(TeamClinic):
    def post(self, resource: dict[str, Any], who: str = "tara",
             extra: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/fhir/{resource['resourceType']}", json=resource,
                                headers={**self.headers[who], **(extra or {})})

    def submit(self, key: str, answers: dict[str, Any], who: str = "tara", **kw: Any) -> str:
        created = self.post(response(key, answers, kw.pop("patient", self.patient), **kw), who)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def search(self, query: str, who: str = "doc") -> list[dict[str, Any]]:
        found = self.client.get(f"/fhir/{query}", headers=self.headers[who])
        assert found.status_code == 200, found.text
        return [e["resource"] for e in found.json().get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match"]

    def score_of(self, response_id: str) -> dict[str, Any]:
        found = self.search(f"Observation?derived-from=QuestionnaireResponse/{response_id}")
        assert len(found) == 1, found
        return found[0]

    def flags(self, who: str = "doc") -> list[dict[str, Any]]:
        return self.search(f"Flag?patient={self.patient}", who)

    def audit(self) -> list[dict[str, Any]]:
        engine = self.app.state.engine
        self.app.state.pipeline.recorder.seal_now(engine)
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT interaction, rtype, rid, actor_id, outcome, body FROM audit_record "
                "ORDER BY seq")).mappings().all()
        return [{**dict(r), "body": json.loads(r["body"])} for r in rows]


def make_clinic(app: Any, client: Any, bearer: Any, *, gender: str = "female") -> Clinic:
    patient = client.post("/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "gender": gender, "name": [{"family": "Screened"}]})
    assert patient.status_code == 201, patient.text
    pid = patient.json()["id"]
    care_team(client, pid, [n for n in STAFF if n not in OFF_TEAM])
    return Clinic(app, client, pid, staff_headers(app, bearer, STAFF))
