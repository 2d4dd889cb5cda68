"""Scores of a checked response: pure functions over the instrument data, no database.

``answers`` maps link ids to the value given: the option's score for choice items, ``True`` /
``False`` for yes/no items. Every number that decides a result (which items count, how they fold,
where a band starts) comes from the instrument's data file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ehr.clinical.instruments.catalog import (
    BAND_SYSTEM,
    SCREENING_SYSTEM,
    Band,
    Instrument,
    display_of,
)

Answer = int | bool


@dataclass(frozen=True)
class Component:
    code: str
    display: str
    value: int | bool


@dataclass(frozen=True)
class Score:
    instrument: Instrument = field(repr=False)
    total: int | None  # None for a risk level (C-SSRS is never summed)
    band: Band | None  # the interpretation band, or the risk level
    components: tuple[Component, ...] = ()


def item_points(instrument: Instrument, link_id: str, answer: Answer | None) -> int:
    """What one answer contributes: yes = 1 (no = 1 for a reverse-scored item)."""
    if answer is None:
        return 0
    item = instrument.item(link_id)
    if isinstance(answer, bool):
        endorsed = answer != (item is not None and item.reversed)
        return 1 if endorsed else 0
    return int(answer)


def band_of(bands: tuple[Band, ...], total: int) -> Band | None:
    return next((b for b in bands if b.low <= total <= b.high), None)


def _risk_level(instrument: Instrument, answers: Mapping[str, Answer]) -> Band:
    levels = instrument.scoring["levels"]
    for level in levels:
        wanted = level["any_yes"]
        if not wanted or any(answers.get(link) is True for link in wanted):
            return _level_band(instrument, level["code"])
    return _level_band(instrument, levels[-1]["code"])


def _level_band(instrument: Instrument, code: str) -> Band:
    return Band(0, 0, code, display_of(BAND_SYSTEM, code))


def score(instrument: Instrument, answers: Mapping[str, Answer], *,
          sex: str | None = None) -> Score:
    if instrument.method == "risk-level":
        return Score(instrument, None, _risk_level(instrument, answers))
    points = {link: item_points(instrument, link, answers.get(link))
              for link in instrument.scoring["items"]}
    components: list[Component] = []
    if instrument.groups:
        folded = {}
        for group in instrument.groups:
            values = [points[link] for link in group.items]
            folded[group.code] = max(values) if group.fold == "max" else sum(values)
            components.append(Component(group.code, group.display, folded[group.code]))
        total = sum(folded.values())
    else:
        total = sum(points.values())
    criteria = instrument.scoring.get("criteria")
    if criteria:
        components.append(_criteria(instrument, criteria, points))
    return Score(instrument, total, band_of(instrument.bands_for(sex), total), tuple(components))


def _criteria(instrument: Instrument, criteria: Mapping[str, object],
              points: Mapping[str, int]) -> Component:
    """A symptom rule such as the PCL-5's DSM-5 one: enough endorsed items in every group."""
    threshold = int(criteria["endorsed_at"])  # type: ignore[call-overload]
    minimum = criteria["minimum"]
    assert isinstance(minimum, Mapping)
    met = all(
        sum(1 for link in group.items if points[link] >= threshold) >= int(minimum[group.code])
        for group in instrument.groups if group.code in minimum)
    code = str(criteria["code"])
    return Component(code, display_of(SCREENING_SYSTEM, code), met)
