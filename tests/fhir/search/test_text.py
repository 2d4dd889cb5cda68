from __future__ import annotations

from ehr.fhir.search.text import MAX_INDEXED, normalise


def test_case_and_accents_are_folded() -> None:
    assert normalise("Émile Zoë") == "emile zoe"
    assert normalise("MÜLLER") == normalise("muller")
    assert normalise("Straße") == "strasse"


def test_whitespace_is_collapsed_and_length_capped() -> None:
    assert normalise("  a \t b  ") == "a b"
    assert len(normalise("x" * (MAX_INDEXED + 50))) == MAX_INDEXED


def test_prefix_of_normalised_is_normalised_prefix() -> None:
    full, prefix = normalise("Chalmérs"), normalise("CHALM")
    assert full.startswith(prefix)
