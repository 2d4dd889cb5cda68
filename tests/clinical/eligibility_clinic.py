"""A small clinic for the eligibility tests: a patient, a care team of real users who can
re-authenticate, checklist responses and decisions over HTTP."""

from __future__ import annotations

from typing import Any

from clinic_staff import FHIR_JSON, TeamClinic, care_team, create_users, reauth, staff_headers

from ehr.clinical.screening_checklist import CHECKLIST_URL, CHECKLIST_VERSION, SECTIONS

# user name -> role; "far" is a physician outside the patient's care team.
STAFF = {"doc": "physician", "doc2": "physician", "nina": "nurse", "tara": "therapist",
         "cora": "compliance", "far": "physician"}
OFF_TEAM = {"far", "cora"}

# The clinical reference, section 2, written out independently of the protocol file:
# checklist item -> (rule id, kind).
YES_NO_RULES = {
    "ketamine-hypersensitivity": ("ketamine-hypersensitivity", "hard-stop"),
    "aneurysmal-vascular-disease": ("aneurysmal-vascular-disease", "hard-stop"),
    "arteriovenous-malformation": ("arteriovenous-malformation", "hard-stop"),
    "intracerebral-haemorrhage": ("intracerebral-haemorrhage", "hard-stop"),
    "recent-stroke": ("recent-stroke", "hard-stop"),
    "unstable-ischaemic-heart-disease": ("unstable-ischaemic-heart-disease", "hard-stop"),
    "current-psychosis": ("current-psychosis", "hard-stop"),
    "schizophrenia-history": ("schizophrenia", "hard-stop"),
    "schizoaffective-history": ("schizoaffective-disorder", "hard-stop"),
    "bipolar-psychotic-history": ("bipolar-psychotic-features", "hard-stop"),
    "pregnancy": ("pregnancy", "hard-stop"),
    "breastfeeding": ("breastfeeding", "hard-stop"),
    "substance-use-disorder-history": ("substance-use-disorder", "needs-review"),
    "recreational-ketamine-pcp": ("recreational-ketamine-pcp", "needs-review"),
    "hepatic-impairment-moderate": ("moderate-hepatic-impairment", "needs-review"),
    "suicide-risk-high": ("high-suicide-risk", "needs-review"),
    "med-benzodiazepine": ("interacting-benzodiazepine", "needs-review"),
    "med-sedative-hypnotic": ("interacting-sedative-hypnotic", "needs-review"),
    "med-stimulant": ("interacting-stimulant", "needs-review"),
    "med-maoi": ("interacting-maoi", "needs-review"),
    "med-opioid": ("interacting-opioid", "needs-review"),
}
HARD_BP, REVIEW_BP = "uncontrolled-hypertension", "elevated-blood-pressure"


def checklist(patient: str, status: str = "completed", *, systolic: Any = 120,
              diastolic: Any = 80, omit: tuple[str, ...] = (), **yes: bool) -> dict[str, Any]:
    """A checklist response: every yes/no item "no" unless named in ``yes`` (with ``_`` for
    ``-``), resting pressure ``systolic``/``diastolic``; ``omit`` leaves items out."""
    chosen = {k.replace("_", "-"): v for k, v in yes.items()}
    groups = []
    for group, _, items in SECTIONS:
        answered = []
        for item in items:
            if item.link_id in omit:
                continue
            if item.kind == "integer":
                value = systolic if item.link_id == "bp-systolic" else diastolic
                answer: dict[str, Any] = {"valueInteger": value}
            else:
                answer = {"valueBoolean": chosen.pop(item.link_id, False)}
            answered.append({"linkId": item.link_id, "answer": [answer]})
        groups.append({"linkId": group, "item": answered})
    assert not chosen, f"unknown checklist items {sorted(chosen)}"
    return {"resourceType": "QuestionnaireResponse",
            "questionnaire": f"{CHECKLIST_URL}|{CHECKLIST_VERSION}", "status": status,
            "subject": {"reference": f"Patient/{patient}"},
            "authored": "2026-01-05T10:00:00Z", "item": groups}


class Clinic(TeamClinic):
    def screen(self, who: str = "doc", **kw: Any) -> str:
        response = self.client.post("/fhir/QuestionnaireResponse",
                                    json=checklist(self.patient, **kw), headers=self.headers[who])
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def reauth(self, who: str = "doc", action: str = "eligibility-decision") -> str:
        return reauth(self.client, self.headers[who], action)

    def decide(self, status: str, who: str = "doc", *, justification: str | None = None,
               assertion: str | None = "fresh", patient: str | None = None) -> Any:
        params: list[dict[str, Any]] = [{"name": "status", "valueCode": status}]
        if justification is not None:
            params.append({"name": "justification", "valueString": justification})
        if assertion == "fresh":
            assertion = self.reauth(who)
        if assertion is not None:
            params.append({"name": "signingAssertion", "valueString": assertion})
        return self.client.post(
            f"/fhir/Patient/{patient or self.patient}/$eligibility-decision",
            json={"resourceType": "Parameters", "parameter": params},
            headers=self.headers[who])

    def status(self, who: str = "doc", patient: str | None = None) -> dict[str, Any]:
        response = self.client.get(f"/fhir/Patient/{patient or self.patient}/$eligibility",
                                   headers=self.headers[who])
        assert response.status_code == 200, response.text
        return parameters(response.json())


def parameters(body: dict[str, Any]) -> dict[str, Any]:
    """name -> value (lists for repeated names) of a Parameters resource."""
    out: dict[str, Any] = {}
    for p in body["parameter"]:
        value = p.get("resource") or next(v for k, v in p.items() if k.startswith("value"))
        if p["name"] in out:
            previous = out[p["name"]]
            out[p["name"]] = [*previous, value] if isinstance(previous, list) else [previous,
                                                                                     value]
        else:
            out[p["name"]] = [value] if p["name"] == "reason" else value
    return out


def make_clinic(app: Any, client: Any, bearer: Any) -> Clinic:
    create_users(app, app.state.engine,
                 {name: (role, f"{name.title()} ({role})") for name, role in STAFF.items()})
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                 "name": [{"family": "Screened"}]},
                          headers=FHIR_JSON).json()["id"]
    care_team(client, patient, [n for n in STAFF if n not in OFF_TEAM])
    return Clinic(app, client, patient, staff_headers(app, bearer, STAFF))
