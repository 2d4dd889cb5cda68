"""A small clinic for the notes tests: one patient, a care team of real users who can
re-authenticate, and helpers to write, sign and withdraw notes over HTTP."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from clinic_staff import FHIR_JSON, PASSWORD, care_team, create_users, reauth, staff_headers

from ehr.clinical.notes.kinds import note_type, psychotherapy_label

NOTE_TEXT = "Integration: the patient described the session and a plan for the week"

# user name -> (role, printed name); "far" is a physician outside the care team.
STAFF = {"tara": ("therapist", "Tara Ames, LCSW"), "theo": ("therapist", "Theo Brandt, PhD"),
         "doc": ("physician", "Dr Dana Wu"), "nina": ("nurse", "Nina Ortiz, RN"),
         "far": ("physician", "Dr Far Away")}


@dataclass
class Clinic:
    client: Any
    patient: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def note_body(self, kind: str = "integration", *, appends: str | None = None,
                  text: str = NOTE_TEXT, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceType": "DocumentReference", "status": "current",
            "docStatus": "preliminary", "type": note_type(kind),
            "subject": {"reference": f"Patient/{self.patient}"},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": base64.b64encode(text.encode()).decode()}}]}
        if kind == "psychotherapy":
            body["meta"] = {"security": [psychotherapy_label()]}
        if appends:
            body["relatesTo"] = [{"code": "appends",
                                  "target": {"reference": f"DocumentReference/{appends}"}}]
        body.update(extra)
        return body

    def post(self, body: dict[str, Any], who: str) -> Any:
        return self.client.post(f"/fhir/{body['resourceType']}", json=body,
                                headers=self.headers[who])

    def draft(self, who: str = "tara", kind: str = "integration", **kw: Any) -> str:
        response = self.post(self.note_body(kind, **kw), who)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def read(self, rid: str, who: str = "tara") -> Any:
        return self.client.get(f"/fhir/DocumentReference/{rid}", headers=self.headers[who])

    def put(self, rid: str, body: dict[str, Any], who: str = "tara") -> Any:
        return self.client.put(f"/fhir/DocumentReference/{rid}", json={**body, "id": rid},
                               headers=self.headers[who])

    def assertion(self, who: str, action: str = "note-signing",
                  password: str = PASSWORD) -> str:
        return reauth(self.client, self.headers[who], action, password)

    def operation(self, rid: str, name: str, who: str, headers: dict[str, str] | None = None,
                  **params: str) -> Any:
        body = {"resourceType": "Parameters", "parameter": [
            {"name": k, "valueString" if k != "meaning" else "valueCode": v}
            for k, v in params.items()]}
        return self.client.post(f"/fhir/DocumentReference/{rid}/${name}", json=body,
                                headers={**self.headers[who], **(headers or {})})

    def sign(self, rid: str, who: str = "tara", meaning: str = "authored",
             assertion: str | None = None) -> Any:
        return self.operation(rid, "sign", who, meaning=meaning,
                              assertion=assertion or self.assertion(who))

    def signed(self, who: str = "tara", kind: str = "integration", **kw: Any) -> str:
        rid = self.draft(who, kind, **kw)
        response = self.sign(rid, who)
        assert response.status_code == 200, response.text
        return rid


def make_clinic(app: Any, client: Any, engine: Any, bearer: Any) -> Clinic:
    create_users(app, engine, STAFF)
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                 "name": [{"family": "Noted"}]},
                          headers=FHIR_JSON).json()["id"]
    care_team(client, patient, [n for n in STAFF if n != "far"])
    return Clinic(client, patient,
                  staff_headers(app, bearer, {n: role for n, (role, _) in STAFF.items()}))
