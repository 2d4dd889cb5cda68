"""Load the instrument data files into typed, immutable definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ehr.clinical.terminology import CANONICAL_BASE, LOINC, coding, local_system

DATA_DIR = Path(__file__).resolve().parent
CODESYSTEMS_FILE = "codesystems.json"
# Panels, totals and sub-scores without a LOINC code; interpretation bands and risk levels.
SCREENING_SYSTEM = local_system("screening")
BAND_SYSTEM = local_system("score-band")
_SYSTEMS = {"loinc": LOINC, "local": SCREENING_SYSTEM}


@dataclass(frozen=True)
class AnswerOption:
    score: int
    display: str | None = None
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class AnswerSet:
    kind: str  # "coding" | "integer" | "boolean"
    options: tuple[AnswerOption, ...] = ()


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    answers: AnswerSet
    code: dict[str, Any] | None = None
    required: bool = True
    reversed: bool = False
    # (link id, answer): the item is asked only when that item was answered so.
    enable_when: tuple[str, Any] | None = None


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    code: str
    display: str

    def coding(self) -> dict[str, Any]:
        return coding(BAND_SYSTEM, self.code, self.display)


@dataclass(frozen=True)
class Group:
    code: str
    display: str
    fold: str  # "sum" | "max"
    items: tuple[str, ...]


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str
    title: str
    version: str
    licence: str
    copyright: str
    source: str
    panel: dict[str, Any]
    total: dict[str, Any]
    items: tuple[Item, ...]
    scoring: dict[str, Any]
    bands: tuple[Band, ...]
    bands_by_sex: dict[str, tuple[Band, ...]] = field(default_factory=dict)
    groups: tuple[Group, ...] = ()
    flags: tuple[dict[str, Any], ...] = ()
    prompt: str | None = None
    wording: bool = True

    @property
    def url(self) -> str:
        return f"{CANONICAL_BASE}/Questionnaire/{self.key}"

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    @property
    def method(self) -> str:
        return str(self.scoring["method"])

    def item(self, link_id: str) -> Item | None:
        return next((i for i in self.items if i.link_id == link_id), None)

    def bands_for(self, sex: str | None) -> tuple[Band, ...]:
        return self.bands_by_sex.get(sex or "", self.bands)


@cache
def codesystem_data() -> tuple[dict[str, Any], ...]:
    data = json.loads((DATA_DIR / CODESYSTEMS_FILE).read_text(encoding="utf-8"))
    return tuple(data["codesystems"])


@cache
def _displays() -> dict[tuple[str, str], str]:
    return {(local_system(cs["name"]), c["code"]): c["display"]
            for cs in codesystem_data() for c in cs["concepts"]}


def display_of(system: str, code: str) -> str:
    return _displays().get((system, code), code)


def _coding(raw: dict[str, Any]) -> dict[str, Any]:
    system = _SYSTEMS[raw["system"]]
    return coding(system, raw["code"], raw.get("display") or display_of(system, raw["code"]))


def _answer_set(raw: dict[str, Any]) -> AnswerSet:
    options = tuple(
        AnswerOption(int(o["score"]), o.get("display"),
                     _SYSTEMS[o["system"]] if o.get("system") else None, o.get("code"))
        for o in raw.get("options", ()))
    return AnswerSet(raw["type"], options)


def _bands(raw: list[dict[str, Any]]) -> tuple[Band, ...]:
    return tuple(Band(int(b["low"]), int(b["high"]), b["code"], display_of(BAND_SYSTEM, b["code"]))
                 for b in raw)


def _items(raw: dict[str, Any], sets: dict[str, AnswerSet]) -> tuple[Item, ...]:
    entries = raw.get("items") or [{"linkId": str(n), "text": f"Item {n}"}
                                   for n in range(1, int(raw.get("item_count", 0)) + 1)]
    reversed_items = set(raw.get("reversed", ()))
    out = []
    for entry in entries:
        when = entry.get("enable_when")
        out.append(Item(
            link_id=entry["linkId"], text=entry["text"],
            answers=sets[entry.get("answers") or raw["answers"]],
            code=coding(LOINC, entry["code"]) if entry.get("code") else None,
            required=bool(entry.get("required", True)),
            reversed=entry["linkId"] in reversed_items,
            enable_when=(when["item"], when["answer"]) if when else None,
        ))
    return tuple(out)


def _instrument(raw: dict[str, Any]) -> Instrument:
    sets = {name: _answer_set(s) for name, s in raw["answer_sets"].items()}
    scoring = raw["scoring"]
    groups = tuple(Group(g["code"], display_of(SCREENING_SYSTEM, g["code"]), g["fold"],
                         tuple(g["items"])) for g in scoring.get("groups", ()))
    return Instrument(
        key=raw["key"], name=raw["name"], title=raw["title"], version=raw["version"],
        licence=raw["licence"], copyright=raw["copyright"], source=raw["source"],
        panel=_coding(raw["panel"]), total=_coding(raw["total"]),
        items=_items(raw, sets), scoring=scoring, bands=_bands(raw.get("bands", [])),
        bands_by_sex={sex: _bands(b) for sex, b in raw.get("bands_by_sex", {}).items()},
        groups=groups, flags=tuple(raw.get("flags", ())), prompt=raw.get("prompt"),
        wording=raw["licence"] != "copyrighted",
    )


@cache
def instruments() -> dict[str, Instrument]:
    """Every shipped instrument by key (``phq-9``, ``gad-7``, ...)."""
    out: dict[str, Instrument] = {}
    for path in sorted(DATA_DIR.glob("*.json")):
        if path.name == CODESYSTEMS_FILE:
            continue
        instrument = _instrument(json.loads(path.read_text(encoding="utf-8")))
        out[instrument.key] = instrument
    return out


def by_key(key: str) -> Instrument | None:
    return instruments().get(key.lower())


def by_url(url: str) -> Instrument | None:
    """The instrument a canonical URL (without ``|version``) names, if it is one of ours."""
    return next((i for i in instruments().values() if i.url == url), None)
