"""Threshold breaches in a flowsheet row, raised as Flags on the session.

The thresholds are protocol data (``monitoring.json``: SBP > 180, DBP > 110, SpO2 < 92,
HR < 50 or > 120, MOAA/S <= 3 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ehr.clinical.flags import build_flag
from ehr.clinical.sessions.measures import MEASURES
from ehr.clinical.sessions.protocol import MonitoringProtocol

ALERT_KIND = "monitoring-threshold"


@dataclass(frozen=True)
class Breach:
    measure: str
    value: float
    words: str  # "above 180"

    @property
    def text(self) -> str:
        measure = MEASURES[self.measure]
        unit = f" {measure.unit_text}" if measure.unit_text else ""
        return f"{measure.text} {self.value:g}{unit} {self.words} (session monitoring threshold)"


def breaches(values: dict[str, float], protocol: MonitoringProtocol) -> list[Breach]:
    out: list[Breach] = []
    for key, value in values.items():
        threshold = protocol.threshold(key)
        words = threshold.breached(value) if threshold else None
        if words:
            out.append(Breach(key, value, words))
    return out


def breach_flag(breach: Breach, *, patient: str, encounter: str, start: str,
                author: str | None) -> dict[str, Any]:
    return build_flag(patient.removeprefix("Patient/"), ALERT_KIND, breach.text,
                      category="clinical", encounter=encounter, author=author, start=start)
