"""A small clinic for the session tests: one patient on a course, a care team of real users
who can re-authenticate, a clock the tests move, and helpers for sessions over HTTP.

Doses are charted with a medication the dosing gates do not govern (text only, no RxNorm
code), so these tests exercise the session rules, not the dosing gates; the route (SNOMED CT)
picks the monitoring protocol exactly as it does for a real ketamine dose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from clinic_staff import FHIR_JSON, care_team, create_users, reauth, staff_headers

from ehr import instants
from ehr.clinical.sessions.phases import session_encounter, with_phase

MINUTE = 60_000_000
# Ten days ago, on a whole minute: sessions happen in the past, the clock is moved forward.
T0 = (instants.now_us() - 10 * 24 * 60 * MINUTE) // MINUTE * MINUTE
STAFF = {"doc": ("physician", "Dr Dana Wu"), "nina": ("nurse", "Nina Ortiz, RN"),
         "tara": ("therapist", "Tara Ames, LCSW"), "cora": ("compliance", "Cora Lee")}
ROUTES = {"esketamine": ("46713006", "Nasal route"), "iv": ("47625008", "Intravenous route"),
          "oral": ("26643006", "Oral route")}


def at(minutes: float) -> str:
    """The FHIR dateTime ``minutes`` after T0."""
    return instants.instant(T0 + int(minutes * MINUTE))


@dataclass
class Clinic:
    app: Any
    client: Any
    engine: Any
    patient: str
    episode: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- time -----------------------------------------------------------------------------

    def now(self, minutes: float) -> None:
        """Set the clinical clock to ``minutes`` after T0."""
        value = T0 + int(minutes * MINUTE)
        self.app.state.pipeline.clock = lambda: value

    # -- HTTP -----------------------------------------------------------------------------

    def post(self, body: dict[str, Any], who: str = "doc") -> Any:
        return self.client.post(f"/fhir/{body['resourceType']}", json=body,
                                headers=self.headers[who])

    def created(self, body: dict[str, Any], who: str = "doc") -> dict[str, Any]:
        response = self.post(body, who)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, path: str, who: str = "doc", **headers: str) -> Any:
        return self.client.get(f"/fhir/{path}", headers={**self.headers[who], **headers})

    def read(self, path: str) -> dict[str, Any]:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def put(self, resource: dict[str, Any], who: str = "doc") -> Any:
        return self.client.put(f"/fhir/{resource['resourceType']}/{resource['id']}",
                               json=resource, headers=self.headers[who])

    def operation(self, encounter: str, name: str, params: list[dict[str, Any]],
                  who: str = "nina") -> Any:
        return self.client.post(f"/fhir/Encounter/{encounter}/${name}",
                                json={"resourceType": "Parameters", "parameter": params},
                                headers=self.headers[who])

    def assertion(self, who: str = "nina", action: str = "session-discharge") -> str:
        return reauth(self.client, self.headers[who], action)

    # -- a session ------------------------------------------------------------------------

    def session(self, phase: str = "arrived") -> dict[str, Any]:
        body = session_encounter(self.patient, self.episode, phase=phase, participants={
            "prescriber": "Practitioner/doc", "monitoring-nurse": "Practitioner/nina",
            "therapist": "Practitioner/tara"}, start=at(-30))
        return self.created(body)

    def move(self, encounter: dict[str, Any], phase: str, who: str = "nina") -> dict[str, Any]:
        current = self.read(f"Encounter/{encounter['id']}")
        response = self.put(with_phase(current, phase), who)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def dose(self, encounter: dict[str, Any], route: str = "esketamine", *, start: float = 0,
             end: float | None = None, mg: float = 56, lot: str = "LOT-A1",
             status: str = "completed") -> dict[str, Any]:
        code, display = ROUTES[route]
        body: dict[str, Any] = {
            "resourceType": "MedicationAdministration", "status": status,
            "contained": [{"resourceType": "Medication", "id": "med",
                           "code": {"text": "study drug"}, "batch": {"lotNumber": lot}}],
            "medicationReference": {"reference": "#med"},
            "subject": {"reference": f"Patient/{self.patient}"},
            "context": {"reference": f"Encounter/{encounter['id']}"},
            "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct",
                                             "code": code, "display": display}]},
                       "dose": {"value": mg, "unit": "mg",
                                "system": "http://unitsofmeasure.org", "code": "mg"}}}
        if route == "iv":
            body["effectivePeriod"] = {"start": at(start)}
            if end is not None:
                body["effectivePeriod"]["end"] = at(end)
        else:
            body["effectiveDateTime"] = at(start)
        return self.created(body)

    def vitals(self, encounter: dict[str, Any], minutes: float, who: str = "nina",
               **values: Any) -> Any:
        params: list[dict[str, Any]] = [{"name": "time", "valueDateTime": at(minutes)}]
        for key, value in values.items():
            name = key.replace("_", "-")
            if isinstance(value, str):
                params.append({"name": name, "valueCode": value})
            elif isinstance(value, int):
                params.append({"name": name, "valueInteger": value})
            else:
                params.append({"name": name, "valueDecimal": value})
        return self.operation(encounter["id"], "record-vitals", params, who)

    def recorded(self, encounter: dict[str, Any], minutes: float, **values: Any) -> Any:
        response = self.vitals(encounter, minutes, **values)
        assert response.status_code == 200, response.text
        return response.json()


NORMAL = {"systolic": 120, "diastolic": 80, "heart_rate": 70, "spo2": 98,
          "respiratory_rate": 14, "moaas": 5, "cadss": 0}


def audited(engine: Any, interaction: str) -> list[tuple[str, str | None, str | None]]:
    """(actor, rtype, rid) of the audit records (sealed or pending) of ``interaction``.

    One statement over both tables: a record the sealer moves meanwhile is seen once.
    """
    with engine.connect() as conn:
        tables = [t for t in ("audit_record", "audit_pending")
                  if t in sa.inspect(conn).get_table_names()]
        query = " UNION ALL ".join(
            f"SELECT actor_id, rtype, rid FROM {t} WHERE interaction = :i" for t in tables)
        return [(r[0], r[1], r[2]) for r in conn.execute(sa.text(query), {"i": interaction})]


def make_clinic(app: Any, client: Any, engine: Any, bearer: Any) -> Clinic:
    create_users(app, engine, STAFF)
    patient = client.post("/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "name": [{"given": ["Sam"], "family": "Session"}]}).json()
    care_team(client, patient["id"], [n for n in STAFF if n != "cora"])
    episode = client.post("/fhir/EpisodeOfCare", headers=FHIR_JSON, json={
        "resourceType": "EpisodeOfCare", "status": "active",
        "patient": {"reference": f"Patient/{patient['id']}"}}).json()
    clinic = Clinic(app, client, engine, patient["id"], episode["id"],
                    staff_headers(app, bearer, {n: role for n, (role, _) in STAFF.items()}))
    clinic.now(0)
    return clinic
