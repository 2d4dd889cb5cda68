"""Scoring of every instrument against the independent reference (``screening_reference``):
property-based over random answer sets, and every band boundary on both sides."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical import screening_reference as ref
from ehr.clinical.instruments import by_key, instruments
from ehr.clinical.instruments.scoring import score

ORDINAL = {"phq-9": (9, 3), "gad-7": (7, 3), "pcl-5": (20, 4), "madrs": (10, 6),
           "qids-sr16": (16, 3), "cadss": (23, 4)}


def ordinal(items: int, top: int) -> st.SearchStrategy[dict[str, int]]:
    return st.lists(st.integers(0, top), min_size=items, max_size=items).map(
        lambda values: {str(i + 1): v for i, v in enumerate(values)})


def audit_answers() -> st.SearchStrategy[dict[str, int]]:
    return st.tuples(ordinal(8, 4), st.sampled_from([0, 2, 4]), st.sampled_from([0, 2, 4])).map(
        lambda t: {**t[0], "9": t[1], "10": t[2]})


def yes_no(items: int) -> st.SearchStrategy[dict[str, bool]]:
    return st.lists(st.booleans(), min_size=items, max_size=items).map(
        lambda values: {str(i + 1): v for i, v in enumerate(values)})


def cssrs_answers() -> st.SearchStrategy[dict[str, bool]]:
    # Items 3-5 are asked only after "yes" to item 2, 6-recent only after "yes" to item 6.
    @st.composite
    def build(draw: Any) -> dict[str, bool]:
        out = {"1": draw(st.booleans()), "2": draw(st.booleans()), "6": draw(st.booleans())}
        if out["2"]:
            out.update({k: draw(st.booleans()) for k in ("3", "4", "5")})
        if out["6"]:
            out["6-recent"] = draw(st.booleans())
        return out

    return build()


def _total_and_band(key: str, answers: dict[str, Any], sex: str | None = None
                    ) -> tuple[int | None, str | None]:
    result = score(by_key(key), answers, sex=sex)  # type: ignore[arg-type]
    return result.total, result.band.code if result.band else None


@settings(max_examples=300)
@given(ordinal(9, 3))
def test_phq9_matches_reference(answers: dict[str, int]) -> None:
    assert _total_and_band("phq-9", answers) == ref.phq9(answers)


@settings(max_examples=300)
@given(ordinal(7, 3))
def test_gad7_matches_reference(answers: dict[str, int]) -> None:
    assert _total_and_band("gad-7", answers) == ref.gad7(answers)


@settings(max_examples=300)
@given(ordinal(20, 4))
def test_pcl5_matches_reference_with_clusters_and_dsm_rule(answers: dict[str, int]) -> None:
    result = score(by_key("pcl-5"), answers)  # type: ignore[arg-type]
    total, band, clusters, dsm = ref.pcl5(answers)
    assert (result.total, result.band and result.band.code) == (total, band)
    parts = {c.code: c.value for c in result.components}
    assert {k: parts[k] for k in clusters} == clusters
    assert parts["pcl5-dsm5-symptom-criteria"] is dsm


@settings(max_examples=300)
@given(audit_answers())
def test_audit_matches_reference(answers: dict[str, int]) -> None:
    assert _total_and_band("audit", answers) == ref.audit(answers)


@settings(max_examples=200)
@given(ordinal(3, 4), st.sampled_from(["male", "female", "other", "unknown", None]))
def test_audit_c_matches_reference_per_sex(answers: dict[str, int], sex: str | None) -> None:
    assert _total_and_band("audit-c", answers, sex) == ref.audit_c(answers, sex)


@settings(max_examples=300)
@given(yes_no(10))
def test_dast10_matches_reference(answers: dict[str, bool]) -> None:
    assert _total_and_band("dast-10", answers) == ref.dast10(answers)


@settings(max_examples=300)
@given(ordinal(10, 6))
def test_madrs_matches_reference(answers: dict[str, int]) -> None:
    assert _total_and_band("madrs", answers) == ref.madrs(answers)


@settings(max_examples=300)
@given(ordinal(16, 3))
def test_qids_matches_reference(answers: dict[str, int]) -> None:
    assert _total_and_band("qids-sr16", answers) == ref.qids(answers)


@settings(max_examples=300)
@given(cssrs_answers())
def test_cssrs_level_matches_reference_and_is_never_a_sum(answers: dict[str, bool]) -> None:
    result = score(by_key("cssrs-screener"), answers)  # type: ignore[arg-type]
    assert result.total is None
    assert result.band is not None and result.band.code == ref.cssrs(answers)


@settings(max_examples=100)
@given(ordinal(23, 4))
def test_cadss_long_and_short_forms(answers: dict[str, int]) -> None:
    assert score(by_key("cadss"), answers).total == ref.cadss(  # type: ignore[arg-type]
        answers, tuple(range(1, 24)))
    short = {k: answers[k] for k in ("1", "2", "6", "7", "15", "22")}
    result = score(by_key("cadss-6"), short)  # type: ignore[arg-type]
    assert result.total == ref.cadss(answers, (1, 2, 6, 7, 15, 22))
    assert result.band is None  # no bands: change from pre-dose is what is tracked


@pytest.mark.parametrize("value", range(0, 6))
def test_moaas(value: int) -> None:
    assert _total_and_band("moaas", {"1": value}) == ref.moaas({"1": value})


# -- band boundaries, both sides -----------------------------------------------------------

BOUNDARIES = {
    "phq-9": [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "moderately-severe"), (19, "moderately-severe"),
              (20, "severe"), (27, "severe")],
    "gad-7": [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "severe"), (21, "severe")],
    "pcl-5": [(0, "below-cutoff"), (32, "below-cutoff"), (33, "provisional-ptsd"),
              (80, "provisional-ptsd")],
    "audit": [(0, "low-risk"), (7, "low-risk"), (8, "hazardous"), (15, "hazardous"),
              (16, "harmful"), (19, "harmful"), (20, "probable-dependence"),
              (40, "probable-dependence")],
    "dast-10": [(0, "none"), (1, "low"), (2, "low"), (3, "moderate"), (5, "moderate"),
                (6, "substantial"), (8, "substantial"), (9, "severe"), (10, "severe")],
    "madrs": [(0, "normal"), (6, "normal"), (7, "mild"), (19, "mild"), (20, "moderate"),
              (34, "moderate"), (35, "severe"), (60, "severe")],
    "qids-sr16": [(0, "none"), (5, "none"), (6, "mild"), (10, "mild"), (11, "moderate"),
                  (15, "moderate"), (16, "severe"), (20, "severe"), (21, "very-severe"),
                  (27, "very-severe")],
    "moaas": [(0, "sedation-warning"), (3, "sedation-warning"), (4, "responsive"),
              (5, "responsive")],
}


def answers_for_total(key: str, total: int) -> dict[str, Any]:
    """Answers reaching ``total`` exactly (items with the coarsest answer sets filled first)."""
    instrument = by_key(key)
    assert instrument is not None
    if key == "dast-10":
        # Item 3 scores on "no": count it first, then "yes" to the others.
        out = {str(i): False for i in range(1, 11)}
        out["3"] = True
        if total:
            out["3"] = False
            for i in [1, 2, 4, 5, 6, 7, 8, 9, 10][:total - 1]:
                out[str(i)] = True
        return out
    if key == "qids-sr16":
        # One item per domain carries the points; the folded-away items stay at 0.
        out = {str(i): 0 for i in range(1, 17)}
        left = total
        for link in ("1", "5", "6", "10", "11", "12", "13", "14", "15"):
            out[link] = min(3, left)
            left -= out[link]
        assert left == 0
        return out
    items = sorted(instrument.items, key=lambda i: len(i.answers.options))
    out, left = {}, total
    for item in items:
        if item.link_id not in instrument.scoring["items"]:
            continue
        allowed = sorted(o.score for o in item.answers.options)
        out[item.link_id] = max(v for v in allowed if v <= left)
        left -= out[item.link_id]
    assert left == 0, (key, total)
    return out


@pytest.mark.parametrize(("key", "total", "band"), [
    (key, total, band) for key, rows in BOUNDARIES.items() for total, band in rows])
def test_every_band_boundary(key: str, total: int, band: str) -> None:
    answers = answers_for_total(key, total)
    assert _total_and_band(key, answers) == (total, band)


@pytest.mark.parametrize(("sex", "total", "band"), [
    ("male", 3, "negative"), ("male", 4, "positive"),
    ("female", 2, "negative"), ("female", 3, "positive"),
    (None, 2, "negative"), (None, 3, "positive"),  # unknown sex: the lower cut-off
])
def test_audit_c_cut_offs_by_sex(sex: str | None, total: int, band: str) -> None:
    assert _total_and_band("audit-c", answers_for_total("audit-c", total), sex) == (total, band)


# -- rules named by the reference ------------------------------------------------------------

def test_pcl5_dsm_rule_needs_every_cluster() -> None:
    # Exactly the minimum rated 2 in every cluster: met; one cluster short: not met.
    base = {str(i): 0 for i in range(1, 21)}
    enough = {**base, "1": 2, "6": 2, "8": 2, "9": 2, "15": 2, "16": 2}
    parts = {c.code: c.value for c in score(by_key("pcl-5"), enough).components}  # type: ignore
    assert parts["pcl5-dsm5-symptom-criteria"] is True
    for missing in ("1", "6", "9", "16"):
        short = {**enough, missing: 1}  # rated 1 ("A little bit") does not count
        parts = {c.code: c.value for c in score(by_key("pcl-5"), short).components}  # type: ignore
        assert parts["pcl5-dsm5-symptom-criteria"] is False, missing


def test_qids_takes_the_highest_item_of_each_folded_domain() -> None:
    answers = {str(i): 0 for i in range(1, 17)}
    answers.update({"1": 3, "2": 3, "3": 3, "4": 3, "6": 1, "9": 2, "15": 1, "16": 3})
    result = score(by_key("qids-sr16"), answers)  # type: ignore[arg-type]
    parts = {c.code: c.value for c in result.components}
    assert parts["qids-sleep"] == 3 and parts["qids-appetite-weight"] == 2
    assert parts["qids-psychomotor"] == 3
    assert result.total == 8  # not 19, the plain sum


def test_dast10_item_3_is_reverse_scored() -> None:
    no_to_all = {str(i): False for i in range(1, 11)}
    assert score(by_key("dast-10"), no_to_all).total == 1  # type: ignore[arg-type]
    assert score(by_key("dast-10"), {**no_to_all, "3": True}).total == 0  # type: ignore


@pytest.mark.parametrize(("answers", "level"), [
    ({"1": False, "2": False, "6": False}, "low-risk"),
    ({"1": True, "2": False, "6": False}, "low-risk"),
    ({"1": True, "2": True, "3": False, "4": False, "5": False, "6": False}, "low-risk"),
    ({"1": True, "2": True, "3": True, "4": False, "5": False, "6": False}, "moderate-risk"),
    ({"1": False, "2": False, "6": True, "6-recent": False}, "moderate-risk"),
    ({"1": True, "2": True, "3": False, "4": True, "5": False, "6": False}, "high-risk"),
    ({"1": True, "2": True, "3": True, "4": False, "5": True, "6": False}, "high-risk"),
    ({"1": False, "2": False, "6": True, "6-recent": True}, "high-risk"),
])
def test_cssrs_levels(answers: dict[str, bool], level: str) -> None:
    result = score(by_key("cssrs-screener"), answers)  # type: ignore[arg-type]
    assert result.band is not None and result.band.code == level


def test_every_instrument_is_shipped() -> None:
    assert set(instruments()) == {"phq-9", "gad-7", "pcl-5", "cssrs-screener", "audit",
                                  "audit-c", "dast-10", "madrs", "qids-sr16", "cadss",
                                  "cadss-6", "moaas"}
