"""End-to-end search on both databases: parse -> SQL -> rows, with the real index rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ehr.db import unit_of_work
from ehr.store.criteria import TokenMatch
from ehr.store.index_writer import delete_index, replace_index
from ehr.store.repository import bump_current
from ehr.store.search_sql import SearchPage, matching_pks

Store = Callable[..., int]
Search = Callable[..., list[str]]
Page = Callable[..., SearchPage]


def patient(rid: str, family: str, given: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "name": [{"family": family, "given": [given]}],
            **extra}


def obs(rid: str, subject: str, code: str, when: str | None = None, **extra: Any
        ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation", "id": rid, "status": extra.pop("status", "final"),
        "code": {"coding": [{"system": "http://loinc.org", "code": code,
                             "display": f"Code {code}"}], "text": f"Lab {code}"},
        "subject": {"reference": subject}, **extra}
    if when is not None:
        out["effectiveDateTime"] = when
    return out


@pytest.fixture
def world(store: Store) -> None:
    store(patient("p1", "Smith", "Anna", gender="female", birthDate="1980-05-01",
                  identifier=[{"system": "mrn", "value": "111"}],
                  managingOrganization={"reference": "Organization/o1"}))
    store(patient("p2", "Smíthers", "Bob", gender="male", birthDate="1990",
                  identifier=[{"system": "mrn", "value": "222"}]))
    store(patient("p3", "Jones", "Émile", gender="male", active=False))
    store({"resourceType": "Organization", "id": "o1", "name": "Clinic"})
    store({"resourceType": "Encounter", "id": "e1", "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "AMB"},
           "subject": {"reference": "Patient/p1"},
           "period": {"start": "2021-01-01T10:00:00Z", "end": "2021-01-01T11:00:00Z"}})
    store(obs("o-a", "Patient/p1", "1234-5", "2021-01-01T10:30:00Z",
              encounter={"reference": "Encounter/e1"},
              valueQuantity={"value": 5.4, "system": "http://unitsofmeasure.org",
                             "code": "mg", "unit": "mg"}))
    store(obs("o-b", "Patient/p1", "9999-9", "2022-06-15",
              valueQuantity={"value": 120, "system": "http://unitsofmeasure.org",
                             "code": "mm[Hg]", "unit": "mmHg"}))
    store(obs("o-c", "Patient/p2", "1234-5", "2020", status="amended"))
    store(obs("o-d", "Group/g1", "1234-5"))
    store({"resourceType": "Provenance", "id": "prov1", "recorded": "2021-01-01T12:00:00Z",
           "target": [{"reference": "Observation/o-a"}],
           "agent": [{"who": {"reference": "Practitioner/dr"}}]})


pytestmark = pytest.mark.usefixtures("world")


def ids(result: list[str]) -> set[str]:
    return set(result)


def test_string_default_exact_contains(search: Search) -> None:
    assert ids(search("Patient", "name=smith")) == {"p1", "p2"}
    assert ids(search("Patient", "family=SMITH")) == {"p1", "p2"}
    assert ids(search("Patient", "family:exact=Smith")) == {"p1"}
    assert ids(search("Patient", "family:exact=smith")) == set()
    assert ids(search("Patient", "given=emile")) == {"p3"}
    assert ids(search("Patient", "name:contains=ithe")) == {"p2"}
    assert ids(search("Patient", "name=anna smith")) == {"p1"}
    assert ids(search("Patient", "name:contains=%")) == set()
    assert ids(search("Patient", "name=smith,jones&gender=male")) == {"p2", "p3"}


def test_token_forms(search: Search) -> None:
    assert ids(search("Observation", "code=1234-5")) == {"o-a", "o-c", "o-d"}
    assert ids(search("Observation", "code=http://loinc.org|9999-9")) == {"o-b"}
    assert ids(search("Observation", "code=other|9999-9")) == set()
    assert ids(search("Observation", "code=|9999-9")) == set()
    assert ids(search("Observation", "code=http://loinc.org|")) == {"o-a", "o-b", "o-c", "o-d"}
    assert ids(search("Observation", "code:not=1234-5")) == {"o-b"}
    assert ids(search("Observation", "code:text=lab 99")) == {"o-b"}
    assert ids(search("Observation", "code:text=code 12")) == {"o-a", "o-c", "o-d"}
    assert ids(search("Patient", "identifier=mrn|222")) == {"p2"}
    assert ids(search("Patient", "active=false")) == {"p3"}
    assert ids(search("Patient", "gender:missing=false")) == {"p1", "p2", "p3"}
    assert ids(search("Patient", "birthdate:missing=true")) == {"p3"}
    assert ids(search("Encounter", "class=AMB")) == {"e1"}


def test_dates(search: Search) -> None:
    assert ids(search("Observation", "date=2021")) == {"o-a"}
    assert ids(search("Observation", "date=2020")) == {"o-c"}
    assert ids(search("Observation", "date=ge2021-01-01")) == {"o-a", "o-b"}
    assert ids(search("Observation", "date=lt2021")) == {"o-c"}
    assert ids(search("Observation", "date=gt2020-06")) == {"o-c", "o-a", "o-b"}
    assert ids(search("Observation", "date=sa2020")) == {"o-a", "o-b"}
    assert ids(search("Observation", "date=eb2022")) == {"o-a", "o-c"}
    assert ids(search("Observation", "date=ne2021")) == {"o-b", "o-c"}
    assert ids(search("Observation", "date=2021-01-01T10:30:00Z")) == {"o-a"}
    assert ids(search("Observation", "date=2021-01-01T12:30:00+02:00")) == {"o-a"}
    assert ids(search("Observation", "date:missing=true")) == {"o-d"}
    assert ids(search("Encounter", "date=2021-01-01")) == {"e1"}
    assert ids(search("Encounter", "date=2021-01-01T10:30")) == set()  # period wider than minute
    assert ids(search("Encounter", "date=ge2021-01-01T10:30")) == {"e1"}
    assert ids(search("Patient", "birthdate=1990-03")) == set()  # year wider than month
    assert ids(search("Patient", "birthdate=le1990-03")) == {"p1", "p2"}


def test_last_updated_and_id(search: Search, store: Store) -> None:
    store(patient("late", "Late", "L"), last_updated=2_000_000_000_000_000)
    assert search("Patient", "_lastUpdated=gt2030") == ["late"]
    assert "late" not in search("Patient", "_lastUpdated=lt2030")
    assert ids(search("Patient", "_id=p1,p3")) == {"p1", "p3"}
    assert ids(search(None, "_id=p1,o1")) == {"p1", "o1"}


def test_quantities(search: Search) -> None:
    assert search("Observation", "value-quantity=5.4") == ["o-a"]
    assert search("Observation", "value-quantity=5.44") == []
    assert search("Observation", "value-quantity=5") == ["o-a"]  # [4.5, 5.5)
    assert search("Observation", "value-quantity=gt100") == ["o-b"]
    assert ids(search("Observation", "value-quantity=le120")) == {"o-a", "o-b"}
    assert search("Observation", "value-quantity=lt120") == ["o-a"]
    assert search("Observation", "value-quantity=120|http://unitsofmeasure.org|mm[Hg]") == ["o-b"]
    assert search("Observation", "value-quantity=120||mmHg") == ["o-b"]
    assert search("Observation", "value-quantity=120||mg") == []
    assert search("Observation", "value-quantity=ap110") == ["o-b"]
    assert search("Observation", "value-quantity=ne5.4") == ["o-b"]


def test_references(search: Search) -> None:
    assert ids(search("Observation", "subject=Patient/p1")) == {"o-a", "o-b"}
    assert ids(search("Observation", "patient=p1")) == {"o-a", "o-b"}
    assert ids(search("Observation", "subject:Group=g1")) == {"o-d"}
    assert ids(search("Observation", "patient=g1")) == set()
    assert ids(search("Observation", "encounter:missing=false")) == {"o-a"}
    assert ids(search("Observation", "subject=p2,g1")) == {"o-c", "o-d"}


def test_chains(search: Search) -> None:
    assert ids(search("Observation", "patient.identifier=mrn|111")) == {"o-a", "o-b"}
    assert ids(search("Observation", "subject:Patient.name=smith")) == {"o-a", "o-b", "o-c"}
    assert ids(search("Observation", "subject.name=smithers")) == {"o-c"}
    assert ids(search("Observation", "encounter.status=finished")) == {"o-a"}
    assert ids(search("Observation", "patient.organization.name=clinic")) == {"o-a", "o-b"}


def test_reverse_chains(search: Search) -> None:
    assert ids(search("Patient", "_has:Observation:patient:code=1234-5")) == {"p1", "p2"}
    assert ids(search("Patient", "_has:Observation:patient:status=amended")) == {"p2"}
    assert ids(search("Patient", "_has:Encounter:patient:_has:Observation:encounter:code=1234-5")
               ) == {"p1"}
    assert ids(search("Observation", "_has:Provenance:target:agent=Practitioner/dr")) == {"o-a"}


def test_includes(included: Search) -> None:
    assert included("Observation", "_id=o-a&_include=Observation:patient") == ["Patient/p1"]
    assert included("Observation", "_id=o-a,o-b&_include=Observation:*") == [
        "Encounter/e1", "Patient/p1"]
    assert included("Observation", "_id=o-a&_include=Observation:subject:Group") == []
    assert included("Observation", "_id=o-a,o-d&_include=Observation:subject") == ["Patient/p1"]
    assert included("Patient", "_id=p1&_revinclude=Observation:patient") == [
        "Observation/o-a", "Observation/o-b"]
    assert included("Observation", "_id=o-a&_revinclude=Provenance:target") == [
        "Provenance/prov1"]
    assert included("Patient", "_id=p1&_revinclude=Observation:patient"
                               "&_include=Patient:organization") == [
        "Observation/o-a", "Observation/o-b", "Organization/o1"]


def test_included_excludes_matches(included: Search) -> None:
    assert included("Observation", "code=1234-5&_include=Observation:encounter"
                                   "&_revinclude=Observation:has-member") == ["Encounter/e1"]


def test_sort_with_missing_values_last(search: Search) -> None:
    assert search("Observation", "_sort=date") == ["o-c", "o-a", "o-b", "o-d"]
    assert search("Observation", "_sort=-date") == ["o-b", "o-a", "o-c", "o-d"]
    assert search("Patient", "_sort=birthdate") == ["p1", "p2", "p3"]
    assert search("Patient", "_sort=-birthdate") == ["p2", "p1", "p3"]
    assert search("Patient", "_sort=family") == ["p3", "p1", "p2"]
    assert search("Patient", "_sort=-_id") == ["p3", "p2", "p1"]
    assert search("Observation", "_sort=status,-_id") == ["o-c", "o-d", "o-b", "o-a"]
    assert search("Observation", "_sort=-value-quantity") == ["o-b", "o-a", "o-c", "o-d"]
    assert search("Observation", "_sort=subject,_id") == ["o-d", "o-a", "o-b", "o-c"]


def test_total_with_count_zero(page: Page) -> None:
    result = page("Observation", "code=1234-5&_count=0")
    assert result.rows == [] and result.total == 3
    assert result.next_cursor is None


def test_deleted_and_updated_resources(engine: Engine, search: Search) -> None:
    with unit_of_work(engine) as session:
        pk = session.execute(sa.text("select pk from resource where rid = 'p2'")).scalar_one()
        assert bump_current(session, pk, 1, content=None, last_updated=1, deleted=True)
        delete_index(session, pk)
    assert ids(search("Patient", "name=smith")) == {"p1"}
    assert "p2" not in search("Patient", "")
    assert ids(search("Observation", "subject:Patient.name=smith")) == {"o-a", "o-b"}
    with unit_of_work(engine) as session:
        pk = session.execute(sa.text("select pk from resource where rid = 'p1'")).scalar_one()
        from ehr.fhir.search import index_values

        replace_index(session, pk, "Patient", index_values("Patient", patient("p1", "Brown",
                                                                              "Anna")))
    assert search("Patient", "name=smith") == []
    assert search("Patient", "name=brown") == ["p1"]


def test_restriction_everywhere(engine: Engine, page: Page, included: Search) -> None:
    """A restriction hiding p2 and o-b must hold for matches, totals, chains, _has, includes."""
    def hide(res: Any) -> Any:
        return res.c.rid.not_in(["p2", "o-b"])

    def q(rtype: str, query: str) -> tuple[set[str], int | None]:
        result = page(rtype, query, restriction=hide)
        return {r.rid for r in result.rows}, result.total

    assert q("Patient", "name=smith") == ({"p1"}, 1)
    assert q("Observation", "subject:Patient.name=smithers") == (set(), 0)
    assert q("Patient", "_has:Observation:patient:code=9999-9") == (set(), 0)
    assert q("Patient", "_has:Observation:patient:code=1234-5") == ({"p1"}, 1)
    assert q("Patient", "_count=0") == (set(), 2)
    assert included("Patient", "_id=p1&_revinclude=Observation:patient",
                    restriction=hide) == ["Observation/o-a"]
    assert included("Observation", "_id=o-c&_include=Observation:patient",
                    restriction=hide) == []
    with unit_of_work(engine, write=False) as session:
        assert len(matching_pks(session, "Observation", [TokenMatch("code", "1234-5")], 10,
                                restriction=hide)) == 3
        assert matching_pks(session, "Patient", [TokenMatch("identifier", "222", "mrn")], 10,
                            restriction=hide) == []
