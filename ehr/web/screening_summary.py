"""What the chart and the screening pages show of scores and eligibility, read as the user.

Everything comes through the FHIR operations (``$scores``, ``$eligibility``) with the user's
own context, so the care-team rules and the audit are those of the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from markupsafe import Markup

from ehr.clinical.instruments import Instrument, by_key
from ehr.web.fhir_calls import FhirCalls
from ehr.web.trend_chart import Point, render_chart, series_of

# The outcome measures followed across the course (issue 8: PHQ-9, GAD-7 and PCL-5).
TREND_INSTRUMENTS = ("phq-9", "gad-7", "pcl-5")
STATUS_LABELS = {"eligible": "Eligible", "not-eligible": "Not eligible",
                 "needs-review": "Needs physician review", "expired": "Expired",
                 "none": "No decision"}
STATUS_TONES = {"eligible": "ok", "not-eligible": "danger", "needs-review": "warn",
                "expired": "warn", "none": ""}


@dataclass
class Eligibility:
    status: str
    reasons: list[str] = field(default_factory=list)
    decided: str | None = None
    expires: str | None = None
    decision: str | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def tone(self) -> str:
        return STATUS_TONES.get(self.status, "")


@dataclass
class Trend:
    instrument: Instrument
    points: list[Point]
    chart: Markup

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def max_score(self) -> int:
        return int(self.instrument.scoring.get("max", 0))


def eligibility_status(fhir: FhirCalls, patient_id: str) -> Eligibility | None:
    """The current ``$eligibility`` answer; None when the user may not ask for it."""
    found = fhir.get(f"Patient/{patient_id}/$eligibility")
    if not found.ok:
        return None
    out = Eligibility("none")
    for param in found.body.get("parameter") or []:
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "status":
            out.status = str(param.get("valueCode"))
        elif name == "reason":
            out.reasons.append(str(param.get("valueString")))
        elif name == "decided":
            out.decided = param.get("valueInstant")
        elif name == "expires":
            out.expires = param.get("valueInstant")
        elif name == "decision":
            out.decision = (param.get("valueReference") or {}).get("reference")
    return out


def trends(fhir: FhirCalls, patient_id: str, zone: tzinfo, *,
           compact: bool = False) -> list[Trend]:
    out = []
    for key in TREND_INSTRUMENTS:
        instrument = by_key(key)
        if instrument is None:
            continue
        found = fhir.get(f"Patient/{patient_id}/$scores", instrument=key)
        points = series_of(found.body) if found.ok else []
        title = f"{instrument.title}: scores over time"
        chart = render_chart(f"trend-{key}{'-compact' if compact else ''}", title, points,
                             instrument.bands, float(instrument.scoring.get("max", 0)), zone,
                             compact=compact)
        out.append(Trend(instrument, points, chart))
    return out


def chart_summary(fhir: FhirCalls, patient_id: str, zone: tzinfo) -> dict[str, Any]:
    """The eligibility status and compact trends shown on the patient's chart."""
    return {"eligibility": eligibility_status(fhir, patient_id),
            "trends": trends(fhir, patient_id, zone, compact=True)}
