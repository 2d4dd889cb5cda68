"""Search over HTTP: parameters of each type, modifiers, chains, includes, sorting, totals, and
paging with cursors that stay correct while the data changes. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRN = "urn:test:mrn"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def post(client: Any, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def bundle(client: Any, url: str, **kw: Any) -> dict[str, Any]:
    response = client.get(url, **kw)
    assert response.status_code == 200, (url, response.text[:500])
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return dict(body)


def ids(body: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == mode]


def search_ids(client: Any, url: str) -> set[str]:
    return set(ids(bundle(client, url)))


def link(body: dict[str, Any], relation: str) -> str | None:
    for item in body.get("link", []):
        if item["relation"] == relation:
            return str(item["url"])
    return None


def relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Clinic:
    patients: dict[str, str]  # key -> id
    observations: dict[str, str]
    encounter: str


def _patient(family: str, given: str, gender: str, birth: str, mrn: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": family, "given": [given]}], "gender": gender, "birthDate": birth}


def _obs(pid: str, code: str, value: float, unit: str, date: str, status: str = "final",
         category: str = "vital-signs", encounter: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": status,
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": date,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
    }
    if encounter:
        body["encounter"] = {"reference": f"Encounter/{encounter}"}
    return body


@pytest.fixture
def clinic(client: Any) -> Clinic:
    people = {
        "muller": _patient("Müller", "Jürgen", "male", "1968-01-30", "M1"),
        "mueller": _patient("Mueller", "Anna", "female", "1990-06-15", "M2"),
        "smith": _patient("Smith", "John", "male", "1980-12-31", "M3"),
        "smithson": _patient("Smithson", "Jo", "female", "2001-03-04", "M4"),
        "osmith": _patient("O'Smith", "Kate", "other", "1975-05-05", "M5"),
    }
    patients = {k: post(client, v) for k, v in people.items()}
    enc = post(client, {"resourceType": "Encounter", "status": "finished",
                        "class": {"code": "AMB"},
                        "subject": {"reference": f"Patient/{patients['smith']}"}})
    obs = {
        "smith_weight": post(client, _obs(patients["smith"], "29463-7", 80.5, "kg",
                                          "2024-01-10T10:00:00Z", encounter=enc)),
        "smith_hr": post(client, _obs(patients["smith"], "8867-4", 72, "/min",
                                      "2024-02-10T10:00:00Z")),
        "muller_weight": post(client, _obs(patients["muller"], "29463-7", 95, "kg",
                                           "2023-05-01", status="amended")),
        "mueller_lab": post(client, _obs(patients["mueller"], "2345-7", 5.4, "mmol/L",
                                         "2024-03-01T08:00:00+02:00", category="laboratory")),
    }
    return Clinic(patients, obs, enc)


# -- Patient ------------------------------------------------------------------------------


def test_name_is_case_and_accent_insensitive_starts_with(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, "/fhir/Patient?name=smith") == {p["smith"], p["smithson"]}
    assert search_ids(client, "/fhir/Patient?name=SMI") == {p["smith"], p["smithson"]}
    assert search_ids(client, "/fhir/Patient?name=muller") == {p["muller"]}
    assert search_ids(client, "/fhir/Patient?name=MÜLLER") == {p["muller"]}
    assert search_ids(client, "/fhir/Patient?name=jurgen") == {p["muller"]}
    assert search_ids(client, "/fhir/Patient?name=mith") == set()


def test_name_exact_and_contains(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, "/fhir/Patient?name:exact=Smith") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?name:exact=smith") == set()
    assert search_ids(client, "/fhir/Patient?name:exact=Müller") == {p["muller"]}
    assert search_ids(client, "/fhir/Patient?name:contains=mith") == {
        p["smith"], p["smithson"], p["osmith"]}


def test_family_given_and_or_and(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, "/fhir/Patient?family=smith") == {p["smith"], p["smithson"]}
    assert search_ids(client, "/fhir/Patient?given=jo") == {p["smith"], p["smithson"]}
    assert search_ids(client, "/fhir/Patient?family=smith&given=john") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?family=smithson,mueller") == {
        p["smithson"], p["mueller"]}


def test_identifier_token(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, f"/fhir/Patient?identifier={MRN}|M3") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?identifier=M3") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?identifier=urn:other|M3") == set()
    assert search_ids(client, f"/fhir/Patient?identifier={MRN}|") == set(p.values())


def test_birthdate_prefixes(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, "/fhir/Patient?birthdate=1980-12-31") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?birthdate=1980") == {p["smith"]}
    assert search_ids(client, "/fhir/Patient?birthdate=lt1975-05-05") == {p["muller"]}
    assert search_ids(client, "/fhir/Patient?birthdate=le1975-05-05") == {p["muller"],
                                                                           p["osmith"]}
    assert search_ids(client, "/fhir/Patient?birthdate=gt1990-06-15") == {p["smithson"]}
    assert search_ids(client, "/fhir/Patient?birthdate=ge1990") == {p["mueller"],
                                                                     p["smithson"]}
    assert search_ids(client, "/fhir/Patient?birthdate=ne1980-12-31") == set(p.values()) - {
        p["smith"]}
    assert search_ids(client, "/fhir/Patient?birthdate=ge1970&birthdate=lt1985") == {
        p["smith"], p["osmith"]}


def test_gender(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, "/fhir/Patient?gender=female") == {p["mueller"], p["smithson"]}
    assert search_ids(client, "/fhir/Patient?gender=male,other") == {
        p["smith"], p["muller"], p["osmith"]}
    assert search_ids(client, "/fhir/Patient?gender:not=male") == {
        p["mueller"], p["smithson"], p["osmith"]}


# -- Observation --------------------------------------------------------------------------


def test_observation_by_patient_and_subject(client: Any, clinic: Clinic) -> None:
    o, p = clinic.observations, clinic.patients
    smith = {o["smith_weight"], o["smith_hr"]}
    assert search_ids(client, f"/fhir/Observation?patient={p['smith']}") == smith
    assert search_ids(client, f"/fhir/Observation?patient=Patient/{p['smith']}") == smith
    assert search_ids(client, f"/fhir/Observation?subject=Patient/{p['smith']}") == smith
    assert search_ids(client, f"/fhir/Observation?subject:Patient={p['smith']}") == smith
    assert search_ids(client, f"/fhir/Observation?patient={p['smithson']}") == set()


def test_observation_code_category_status(client: Any, clinic: Clinic) -> None:
    o = clinic.observations
    weights = {o["smith_weight"], o["muller_weight"]}
    assert search_ids(client, f"/fhir/Observation?code={LOINC}|29463-7") == weights
    assert search_ids(client, "/fhir/Observation?code=29463-7") == weights
    assert search_ids(client, f"/fhir/Observation?code={LOINC}|29463-7,{LOINC}|8867-4") == {
        *weights, o["smith_hr"]}
    assert search_ids(client, "/fhir/Observation?category=laboratory") == {o["mueller_lab"]}
    assert search_ids(client, f"/fhir/Observation?category={CATEGORY}|vital-signs") == {
        o["smith_weight"], o["smith_hr"], o["muller_weight"]}
    assert search_ids(client, "/fhir/Observation?status=amended") == {o["muller_weight"]}


def test_observation_date_encounter_value(client: Any, clinic: Clinic) -> None:
    o = clinic.observations
    assert search_ids(client, "/fhir/Observation?date=2024-01") == {o["smith_weight"]}
    assert search_ids(client, "/fhir/Observation?date=ge2024-01-01") == {
        o["smith_weight"], o["smith_hr"], o["mueller_lab"]}
    assert search_ids(client, "/fhir/Observation?date=lt2024") == {o["muller_weight"]}
    # 08:00+02:00 is 06:00Z: both views of the instant must find it.
    assert search_ids(client, "/fhir/Observation?date=ge2024-03-01T06:00:00Z"
                              "&date=le2024-03-01T06:00:00Z") == {o["mueller_lab"]}
    assert search_ids(client, f"/fhir/Observation?encounter=Encounter/{clinic.encounter}") == {
        o["smith_weight"]}
    assert search_ids(client, "/fhir/Observation?value-quantity=gt80") == {
        o["smith_weight"], o["muller_weight"]}
    assert search_ids(client, "/fhir/Observation?value-quantity=80.5||kg") == {
        o["smith_weight"]}
    assert search_ids(client,
                      "/fhir/Observation?value-quantity=le95|http://unitsofmeasure.org|kg") == {
        o["smith_weight"], o["muller_weight"]}


def test_chained_patient_identifier(client: Any, clinic: Clinic) -> None:
    o = clinic.observations
    assert search_ids(client, f"/fhir/Observation?patient.identifier={MRN}|M3") == {
        o["smith_weight"], o["smith_hr"]}
    assert search_ids(client, "/fhir/Observation?subject:Patient.name=mueller") == {
        o["mueller_lab"]}
    assert search_ids(client, f"/fhir/Observation?patient.identifier={MRN}|none") == set()


# -- common parameters --------------------------------------------------------------------


def test_id_and_last_updated(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert search_ids(client, f"/fhir/Patient?_id={p['smith']},{p['muller']}") == {
        p["smith"], p["muller"]}
    assert search_ids(client, "/fhir/Patient?_lastUpdated=gt2000-01-01") == set(p.values())
    assert search_ids(client, "/fhir/Patient?_lastUpdated=lt2000-01-01") == set()
    stamp = client.get(f"/fhir/Patient/{p['osmith']}").json()["meta"]["lastUpdated"]
    later = search_ids(client, f"/fhir/Patient?_lastUpdated=gt{stamp.replace('+', '%2B')}")
    assert p["osmith"] not in later and p["smith"] not in later


def test_count_sort_and_total(client: Any, clinic: Clinic) -> None:
    body = bundle(client, "/fhir/Patient?_count=2&_sort=birthdate")
    assert len(ids(body)) == 2
    assert body["total"] == len(clinic.patients)
    asc = ids(bundle(client, "/fhir/Patient?_sort=birthdate&_count=50"))
    desc = ids(bundle(client, "/fhir/Patient?_sort=-birthdate&_count=50"))
    births = {pid: client.get(f"/fhir/Patient/{pid}").json()["birthDate"] for pid in asc}
    assert [births[i] for i in asc] == sorted(births.values())
    assert desc == list(reversed(asc))
    fam = ids(bundle(client, "/fhir/Patient?_sort=family,given&_count=50"))
    families = [client.get(f"/fhir/Patient/{pid}").json()["name"][0]["family"] for pid in fam]
    assert families.index("Smith") < families.index("Smithson")
    none = bundle(client, "/fhir/Patient?_total=none")
    assert "total" not in none


def test_summary_count(client: Any, clinic: Clinic) -> None:
    body = bundle(client, "/fhir/Patient?_summary=count")
    assert body["total"] == len(clinic.patients)
    assert ids(body) == []
    assert bundle(client, "/fhir/Patient?gender=female&_summary=count")["total"] == 2


def test_include_and_revinclude(client: Any, clinic: Clinic) -> None:
    o, p = clinic.observations, clinic.patients
    body = bundle(client, f"/fhir/Observation?patient={p['smith']}&_include=Observation:patient")
    assert set(ids(body)) == {o["smith_weight"], o["smith_hr"]}
    assert ids(body, "include") == [p["smith"]]
    body = bundle(client, f"/fhir/Patient?_id={p['smith']}&_revinclude=Observation:patient")
    assert ids(body) == [p["smith"]]
    assert set(ids(body, "include")) == {o["smith_weight"], o["smith_hr"]}
    assert body["total"] == 1


def test_deleted_resources_are_not_found(client: Any, clinic: Clinic) -> None:
    p = clinic.patients
    assert client.delete(f"/fhir/Patient/{p['smith']}").status_code in (200, 204)
    assert search_ids(client, "/fhir/Patient?name=smith") == {p["smithson"]}
    assert bundle(client, "/fhir/Patient?_summary=count")["total"] == len(p) - 1


def test_post_search_equals_get(client: Any, clinic: Clinic) -> None:
    query = "family=smith&gender=male&_count=10"
    got = bundle(client, f"/fhir/Patient?{query}")
    response = client.post("/fhir/Patient/_search", content=query,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    posted = response.json()
    assert ids(posted) == ids(got) == [clinic.patients["smith"]]
    assert posted["total"] == got["total"]
    mixed = client.post("/fhir/Patient/_search?family=smith", content="gender=female",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ids(mixed.json()) == [clinic.patients["smithson"]]


def test_system_level_search(client: Any, clinic: Clinic) -> None:
    body = bundle(client, f"/fhir?_id={clinic.patients['smith']},{clinic.encounter}")
    assert set(ids(body)) == {clinic.patients["smith"], clinic.encounter}


def test_self_link_and_full_urls(client: Any, clinic: Clinic) -> None:
    body = bundle(client, "/fhir/Patient?family=smith")
    self_link = link(body, "self")
    assert self_link is not None and self_link.startswith("http")
    assert ("family", "smith") in parse_qsl(urlsplit(self_link).query)
    for entry in body["entry"]:
        assert entry["fullUrl"].endswith(f"/fhir/Patient/{entry['resource']['id']}")


# -- paging -------------------------------------------------------------------------------


def _pages(client: Any, url: str, limit: int = 50) -> list[dict[str, Any]]:
    pages = [bundle(client, url)]
    while (nxt := link(pages[-1], "next")) and len(pages) < limit:
        pages.append(bundle(client, relative(nxt)))
    return pages


@pytest.mark.parametrize("sort", ["", "&_sort=family", "&_sort=-birthdate", "&_sort=_lastUpdated"])
def test_paging_visits_every_match_once(client: Any, sort: str) -> None:
    created = [post(client, _patient(f"Page{i}", "X", "male", f"19{50 + i}-01-01", f"P{i}"))
               for i in range(7)]
    pages = _pages(client, f"/fhir/Patient?_count=2{sort}")
    seen = [i for page in pages for i in ids(page)]
    assert len(pages) == 4
    assert sorted(seen) == sorted(created)
    assert all(len(ids(page)) == 2 for page in pages[:-1])
    assert link(pages[-1], "next") is None
    for page in pages:
        assert page["total"] == 7


def test_previous_link_goes_back(client: Any) -> None:
    for i in range(7):
        post(client, _patient(f"Prev{i}", "X", "female", f"19{60 + i}-01-01", f"Q{i}"))
    pages = _pages(client, "/fhir/Patient?_count=2&_sort=birthdate")
    assert link(pages[0], "previous") is None
    for i in range(1, len(pages)):
        prev = link(pages[i], "previous")
        assert prev is not None
        assert ids(bundle(client, relative(prev))) == ids(pages[i - 1])


def test_paging_while_data_changes(client: Any) -> None:
    created = [post(client, _patient(f"Live{i}", "X", "male", f"19{70 + i}-01-01", f"L{i}"))
               for i in range(7)]
    first = bundle(client, "/fhir/Patient?_count=2&_sort=birthdate")
    seen = ids(first)
    deleted = [pid for pid in created if pid not in seen][:1]
    for pid in deleted:
        assert client.delete(f"/fhir/Patient/{pid}").status_code in (200, 204)
    inserted = post(client, _patient("LiveNew", "X", "male", "1900-01-01", "LN"))
    page = first
    while nxt := link(page, "next"):
        page = bundle(client, relative(nxt))
        seen.extend(ids(page))
        # Churn between every page fetch.
        extra = post(client, _patient("LiveMore", "X", "male", "1901-01-01", "LM"))
        assert client.delete(f"/fhir/Patient/{extra}").status_code in (200, 204)
    assert len(seen) == len(set(seen)), seen
    unchanged = set(created) - set(deleted)
    assert unchanged <= set(seen), unchanged - set(seen)
    assert not set(deleted) & set(seen)
    assert inserted not in seen  # sorts before the cursor: never reached


def test_paging_with_updates_between_pages(client: Any) -> None:
    created = [post(client, _patient(f"Upd{i}", "X", "male", f"19{80 + i}-01-01", f"U{i}"))
               for i in range(7)]
    page = bundle(client, "/fhir/Patient?_count=3")
    seen = ids(page)
    # Touch a resource already seen: a _lastUpdated-free default order must not show it twice.
    body = client.get(f"/fhir/Patient/{seen[0]}").json()
    body["active"] = True
    assert client.put(f"/fhir/Patient/{seen[0]}", json=body, headers=FHIR_JSON).status_code == 200
    while nxt := link(page, "next"):
        page = bundle(client, relative(nxt))
        seen.extend(ids(page))
    assert len(seen) == len(set(seen))
    assert set(seen) == set(created)
