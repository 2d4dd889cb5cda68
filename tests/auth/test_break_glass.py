"""Break-the-glass (issue 3 item 8): time-boxed emergency access outside the care team, marked
ETREAT on every request it covers, reviewed by compliance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ehr.auth.access_tables import BreakGlassRow
from ehr.context import RequestContext
from ehr.db import unit_of_work
from ehr.fhir.pipeline import AccessEvent

FHIR_JSON = {"Content-Type": "application/fhir+json"}
REASON = "Unconscious in the ED, need medication history"


@dataclass
class RecordingRecorder:
    """Stands in for the audit trail (a later issue): keeps every event it is given."""

    events: list[tuple[str, AccessEvent]] = field(default_factory=list)

    def record(self, session: Any, ctx: RequestContext, event: AccessEvent) -> None:
        self.events.append((ctx.actor.id, event))

    def mark(self, session: Any) -> int:
        return len(self.events)

    def rollback_to(self, session: Any, mark: int) -> None:
        del self.events[mark:]

    def of(self, actor: str) -> list[AccessEvent]:
        return [e for a, e in self.events if a == actor]


def post(client: Any, resource: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**FHIR_JSON, **(headers or {})})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def observation(pid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/{pid}"}}


@dataclass
class Ward:
    own: str
    other: str
    other_obs: str
    doc: dict[str, str]
    compliance: dict[str, str]
    recorder: RecordingRecorder


def _user(app: Any, bearer_header: Any, name: str, role: str, scopes: str) -> dict[str, str]:
    return bearer_header(app, subject=name, kind="user", scopes=scopes, roles=(role,),
                         practitioner=f"Practitioner/{name}")


def _ward(app: Any, client: Any, bearer_header: Any) -> Ward:
    own = post(client, {"resourceType": "Patient", "name": [{"family": "Own"}]})
    other = post(client, {"resourceType": "Patient", "name": [{"family": "Other"}]})
    post(client, {"resourceType": "CareTeam", "status": "active",
                  "subject": {"reference": f"Patient/{own}"},
                  "participant": [{"member": {"reference": "Practitioner/doc"}}]})
    other_obs = post(client, observation(other))
    recorder = RecordingRecorder()
    app.state.pipeline.recorder = recorder
    return Ward(own, other, other_obs,
                _user(app, bearer_header, "doc", "physician", "user/*.cruds"),
                _user(app, bearer_header, "officer", "compliance",
                      "user/AuditEvent.rs user/Provenance.rs"),
                recorder)


@pytest.fixture
def ward(app: Any, client: Any, bearer_header: Any) -> Ward:
    return _ward(app, client, bearer_header)


def request_access(client: Any, headers: dict[str, str], patient: str,
                   reason: str = REASON) -> Any:
    return client.post("/auth/break-glass", json={"patient": patient, "reason": reason},
                       headers=headers)


def test_break_glass_opens_the_record_and_marks_requests(client: Any, ward: Ward) -> None:
    w = ward
    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 404
    granted = request_access(client, w.doc, f"Patient/{w.other}")
    assert granted.status_code == 201, granted.text
    assert granted.json()["patient"] == f"Patient/{w.other}"
    w.recorder.events.clear()

    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 200
    assert client.get(f"/fhir/Observation/{w.other_obs}", headers=w.doc).status_code == 200
    found = client.get(f"/fhir/Observation?subject=Patient/{w.other}", headers=w.doc).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [w.other_obs]
    created = post(client, observation(w.other), {**w.doc})
    assert client.get(f"/fhir/Patient/{w.own}", headers=w.doc).status_code == 200

    events = w.recorder.of("doc")
    covered = [e for e in events if w.other in e.patients]
    assert {e.interaction for e in covered} == {"read", "search-type", "create"}
    assert all(e.detail.get("purpose_of_use") == "ETREAT" for e in covered)
    assert any(e.rid == created for e in covered)
    own = [e for e in events if e.patients == (w.own,)]
    assert own and all("purpose_of_use" not in e.detail for e in own)


def test_break_glass_expires(client: Any, ward: Ward, engine: Any) -> None:
    w = ward
    assert request_access(client, w.doc, w.other).status_code == 201
    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 200
    table = BreakGlassRow.__table__  # type: ignore[attr-defined]
    with unit_of_work(engine) as session:
        session.execute(sa.update(table).values(expires_at=1))
    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 404
    assert client.get("/fhir/Observation", headers=w.doc).json()["total"] == 0


def test_break_glass_duration_comes_from_settings(settings: Any, engine: Any,
                                                  bearer_header: Any) -> None:
    from ehr.app import create_app

    app = create_app(settings.model_copy(update={"break_glass_minutes": 0}), engine)
    with TestClient(app, base_url="http://testserver") as client:
        client.headers.update(bearer_header(app, subject="seed", kind="client",
                                            scopes="system/*.cruds"))
        w = _ward(app, client, bearer_header)
        granted = request_access(client, w.doc, w.other)
        assert granted.status_code == 201
        assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 404


def test_break_glass_refusals(app: Any, client: Any, ward: Ward, bearer_header: Any) -> None:
    w = ward
    short = request_access(client, w.doc, w.other, reason="urgent")
    assert short.status_code == 400
    unknown = request_access(client, w.doc, "Patient/no-such-patient")
    assert unknown.status_code == 404
    deleted = post(client, {"resourceType": "Patient"})
    assert client.delete(f"/fhir/Patient/{deleted}").status_code == 200
    assert request_access(client, w.doc, deleted).status_code == 404
    assert request_access(client, w.compliance, w.other).status_code == 403
    system = bearer_header(app, subject="etl", kind="client", scopes="system/*.cruds")
    assert request_access(client, system, w.other).status_code == 403
    assert request_access(client, {"Authorization": ""}, w.other).status_code == 401
    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 404


def test_review_queue(client: Any, ward: Ward) -> None:
    w = ward
    grant = request_access(client, w.doc, w.other).json()["id"]
    assert client.get("/auth/break-glass", headers=w.doc).status_code == 403
    queue = client.get("/auth/break-glass", headers=w.compliance)
    assert queue.status_code == 200
    (row,) = queue.json()
    assert row["id"] == grant and row["username"] == "doc" and row["patient_id"] == w.other
    assert row["reason"] == REASON and row["reviewed_at"] is None

    review = f"/auth/break-glass/{grant}/review"
    assert client.post(review, json={"note": "ok"}, headers=w.doc).status_code == 403
    assert client.post(review, json={"note": "  "}, headers=w.compliance).status_code == 400
    done = client.post(review, json={"note": "Confirmed with the ED chart"},
                       headers=w.compliance)
    assert done.status_code == 204
    assert client.get("/auth/break-glass?status=open", headers=w.compliance).json() == []
    (reviewed,) = client.get("/auth/break-glass?status=all", headers=w.compliance).json()
    assert reviewed["reviewed_by"] == "officer"
    assert reviewed["review_note"] == "Confirmed with the ED chart"
    again = client.post(review, json={"note": "twice"}, headers=w.compliance)
    assert again.status_code == 404
    missing = client.post("/auth/break-glass/999999/review", json={"note": "x"},
                          headers=w.compliance)
    assert missing.status_code == 404
    # Review closes the file, not the grant: access lasts for its time box.
    assert client.get(f"/fhir/Patient/{w.other}", headers=w.doc).status_code == 200
