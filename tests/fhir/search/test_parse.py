from __future__ import annotations

import pytest

from ehr.dates import DAY, parse_range
from ehr.errors import BadRequest
from ehr.fhir.search.parse import SearchRequest, parse_search
from ehr.store.criteria import (
    AnyOf,
    Chain,
    DateMatch,
    Has,
    IdMatch,
    IncludeSpec,
    LastUpdatedMatch,
    Missing,
    Not,
    QuantityMatch,
    ReferenceMatch,
    SortKey,
    StringMatch,
    TokenMatch,
    TokenText,
)

NOW = parse_range("2024-01-01")[0]


def parse(rtype: str | None, *pairs: tuple[str, str], strict: bool = True) -> SearchRequest:
    return parse_search(rtype, list(pairs), strict=strict, default_count=20, max_count=100,
                        now=NOW)


def test_comma_is_or_and_repetition_is_and() -> None:
    req = parse("Observation", ("code", "a,b"), ("code", "c"))
    assert req.criteria == [AnyOf((TokenMatch("code", "a"), TokenMatch("code", "b"))),
                            TokenMatch("code", "c")]


def test_token_forms_and_modifiers() -> None:
    req = parse("Observation", ("code", "s|c"), ("code", "|c"), ("code", "s|"),
                ("code:not", "x"), ("code:text", "Blood Préssure"), ("status", r"a\,b"))
    assert req.criteria == [
        TokenMatch("code", "c", "s"), TokenMatch("code", "c", no_system=True),
        TokenMatch("code", None, "s"), Not(TokenMatch("code", "x")),
        TokenText("code", "blood pressure"), TokenMatch("status", "a,b"),
    ]


def test_string_modifiers_normalise() -> None:
    req = parse("Patient", ("name", "ÉMILE"), ("family:exact", "Zoë"), ("given:contains", "IL"))
    assert req.criteria == [StringMatch("name", "emile"),
                            StringMatch("family", "Zoë", "exact", "zoe"),
                            StringMatch("given", "il", "contains")]


def test_date_prefixes_and_ap() -> None:
    req = parse("Observation", ("date", "ge2020-01"), ("date", "lt2020-02-01T10:00Z"))
    assert req.criteria == [DateMatch("date", "ge", *parse_range("2020-01")),
                            DateMatch("date", "lt", *parse_range("2020-02-01T10:00Z"))]
    (ap,) = parse("Observation", ("date", "ap2023-12-31")).criteria
    low, high = parse_range("2023-12-31")
    assert isinstance(ap, DateMatch) and ap.op == "overlap"
    assert (ap.low, ap.high) == (low - DAY, high + DAY)  # 10% of a day is under the minimum
    (far,) = parse("Observation", ("date", "ap2014-01-01")).criteria
    assert isinstance(far, DateMatch) and far.low < parse_range("2014-01-01")[0] - 300 * DAY


def test_last_updated_and_id() -> None:
    req = parse("Patient", ("_lastUpdated", "gt2020"), ("_id", "a,b"))
    assert req.criteria == [LastUpdatedMatch("gt", *parse_range("2020")), IdMatch(("a", "b"))]


def test_quantity_and_number_precision() -> None:
    (q,) = parse("Observation", ("value-quantity", "5.4|http://unitsofmeasure.org|mg")).criteria
    assert isinstance(q, QuantityMatch) and q.op == "eq"
    assert q.low == pytest.approx(5.35) and q.high == pytest.approx(5.45)
    assert (q.system, q.code) == ("http://unitsofmeasure.org", "mg")
    (g,) = parse("Observation", ("value-quantity", "gt100||mmHg")).criteria
    assert g == QuantityMatch("value-quantity", "gt", 100.0, 100.0, None, "mmHg")
    (e,) = parse("Observation", ("value-quantity", "1e2")).criteria
    assert isinstance(e, QuantityMatch) and (e.low, e.high) == (50.0, 150.0)


def test_reference_forms() -> None:
    req = parse("Observation", ("subject", "Patient/1"), ("patient", "2"),
                ("subject:Group", "g"), ("subject", "http://x/fhir/Patient/3"),
                ("subject:missing", "true"), ("subject:identifier", "mrn|7"))
    assert req.criteria == [
        ReferenceMatch("subject", "1", ("Patient",)), ReferenceMatch("patient", "2", ("Patient",)),
        ReferenceMatch("subject", "g", ("Group",)),
        ReferenceMatch("subject", url="http://x/fhir/Patient/3"),
        Missing("subject", "reference", True), TokenMatch("subject:identifier", "7", "mrn"),
    ]


def test_chain_and_has() -> None:
    req = parse("Observation", ("patient.identifier", "s|v"), ("subject:Patient.name", "smi"))
    assert req.criteria == [
        Chain("patient", (("Patient", TokenMatch("identifier", "v", "s")),)),
        Chain("subject", (("Patient", StringMatch("name", "smi")),)),
    ]
    (has,) = parse("Patient", ("_has:Observation:patient:code", "1234-5")).criteria
    assert has == Has("Observation", "patient", TokenMatch("code", "1234-5"))
    (nested,) = parse("Patient", ("_has:Encounter:patient:_has:Observation:encounter:code",
                                  "x")).criteria
    assert nested == Has("Encounter", "patient",
                         Has("Observation", "encounter", TokenMatch("code", "x")))


def test_ambiguous_chain_tries_every_target_with_the_param() -> None:
    (chain,) = parse("Observation", ("subject.name", "x")).criteria
    assert isinstance(chain, Chain)
    assert "Patient" in {t for t, _ in chain.targets}
    assert "Observation" not in {t for t, _ in chain.targets}


def test_control_parameters() -> None:
    req = parse("Observation", ("_count", "500"), ("_sort", "-date,_id,status"),
                ("_summary", "count"), ("_elements", "id,code"), ("_total", "none"),
                ("_include", "Observation:patient"), ("_include:iterate", "Observation:*"),
                ("_revinclude", "Provenance:target:Observation"), ("_cursor", "abc"),
                ("_format", "json"))
    assert req.count == 100
    assert req.sort == [SortKey("date", "date", True), SortKey("_id", "id"),
                        SortKey("status", "token")]
    assert (req.summary, req.elements, req.total, req.cursor) == ("count", ["id", "code"],
                                                                  "none", "abc")
    assert req.includes == [IncludeSpec("Observation", "patient"),
                            IncludeSpec("Observation", None)]
    assert req.revincludes == [IncludeSpec("Provenance", "target", "Observation")]
    assert ("_cursor", "abc") not in req.link_params
    assert ("_count", "500") in req.link_params
    assert parse("Observation").count == 20


def test_unknown_params_warn_unless_strict() -> None:
    lenient = parse("Patient", ("foo", "1"), ("name:below", "x"), ("name", "y"), strict=False)
    assert lenient.criteria == [StringMatch("name", "y")]
    assert [w.expression for w in lenient.warnings] == [("foo",), ("name:below",)]
    assert all(w.severity == "warning" and w.code == "not-supported" for w in lenient.warnings)
    with pytest.raises(BadRequest) as exc:
        parse("Patient", ("foo", "1"))
    assert exc.value.issues[0].expression == ("foo",)


@pytest.mark.parametrize(
    ("rtype", "key", "value"),
    [
        ("Observation", "date", "ge2020-13"),
        ("Observation", "date", "xx2020"),
        ("Observation", "value-quantity", "abc"),
        ("Observation", "value-quantity", "5|mg"),
        ("Observation", "_count", "-1"),
        ("Observation", "_count", "ten"),
        ("Observation", "_sort", "nope"),
        ("Observation", "_summary", "maybe"),
        ("Observation", "_total", "all"),
        ("Observation", "_include", "Observation"),
        ("Observation", "_include", "Observation:status"),
        ("Observation", "_revinclude", "Nope:subject"),
        ("Observation", "code:missing", "yes"),
        ("Observation", "subject", "Nonsense/1"),
        ("Observation", "encounter", "Patient/1"),
        ("Patient", "_has:Observation", "x"),
        ("Patient", "_has:Nope:patient:code", "x"),
        ("Observation", "status.name", "x"),
        ("Patient", "name", ""),
        ("Patient", "_lastUpdated", "gt20"),
    ],
)
def test_malformed_values_are_bad_requests_naming_the_param(rtype: str, key: str,
                                                             value: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse(rtype, (key, value), strict=False)
    assert exc.value.issues[0].expression == (key,)
    assert exc.value.status == 400
