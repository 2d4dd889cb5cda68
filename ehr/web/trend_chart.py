"""Score trends as server-rendered inline SVG (no script): a line over the instrument's bands.

The series comes from ``Patient/{id}/$scores``; the bands (their limits and names) come from
the instrument data, so a clinician who corrects a cut-off in the data file moves the shading
too. Each band is shaded from half a point below its lowest score to half a point above its
highest, so every integer score sits inside its own band. Dates are shown in the clinic's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from markupsafe import Markup, escape

from ehr.clinical.instruments import Band

# Band tones from "least" to "most" severe; the stylesheet colours them.
TONES = 5
_MAX_DATE_LABELS = 6


@dataclass(frozen=True)
class Point:
    when: datetime
    value: float
    band: str
    change: float | None
    observation: str


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


FULL = Size(680, 280, 44, 130, 12, 44)
COMPACT = Size(340, 120, 30, 8, 8, 26)


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def series_of(parameters: dict[str, Any]) -> list[Point]:
    """The numeric scores of a ``$scores`` answer, oldest first (a risk level is not charted)."""
    points = []
    for param in parameters.get("parameter") or []:
        if not isinstance(param, dict) or param.get("name") != "score":
            continue
        parts = {p.get("name"): p for p in param.get("part") or [] if isinstance(p, dict)}
        when = _parse((parts.get("date") or {}).get("valueDateTime"))
        quantity = (parts.get("value") or {}).get("valueQuantity") or {}
        value = quantity.get("value")
        if when is None or not isinstance(value, int | float):
            continue
        band = (parts.get("band") or {}).get("valueCoding") or {}
        change = (parts.get("change") or {}).get("valueDecimal")
        ref = ((parts.get("observation") or {}).get("valueReference") or {}).get("reference")
        points.append(Point(when, float(value), str(band.get("display") or band.get("code")
                                                     or ""),
                            float(change) if isinstance(change, int | float) else None,
                            str(ref or "")))
    points.sort(key=lambda p: p.when)
    return points


def tone(index: int, count: int) -> int:
    """The band's tone, spread over the tone scale whatever the number of bands."""
    if count <= 1:
        return 0
    return round(index * (TONES - 1) / (count - 1))


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_chart(chart_id: str, title: str, points: list[Point], bands: tuple[Band, ...],
                 y_max: float, zone: tzinfo, *, compact: bool = False) -> Markup:
    size = COMPACT if compact else FULL
    top_value = max([y_max, *(p.value for p in points)]) or 1.0

    def y(value: float) -> float:
        clipped = min(max(value, 0.0), top_value)
        return size.top + (1 - clipped / top_value) * size.plot_height

    times = [p.when.timestamp() for p in points]
    first, last = (min(times), max(times)) if times else (0.0, 0.0)
    spread = last - first

    def x(moment: float) -> float:
        if spread <= 0:
            return size.left + size.plot_width / 2
        # A margin of 5% keeps the first and last points off the axes.
        return size.left + (0.05 + 0.9 * (moment - first) / spread) * size.plot_width

    out = [f'<svg class="chart trend{" compact" if compact else ""}" '
           f'viewBox="0 0 {size.width} {size.height}" role="img" '
           f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-title">{escape(title)}</title>']
    for index, band in enumerate(bands):
        high, low = y(band.high + 0.5), y(band.low - 0.5)
        out.append(f'<rect class="band tone-{tone(index, len(bands))}" x="{size.left}" '
                   f'y="{high:.1f}" width="{size.plot_width}" height="{low - high:.1f}">'
                   f'<title>{escape(band.display)}: {band.low}-{band.high}</title></rect>')
        if not compact:
            out.append(f'<text class="band-label" x="{size.left + size.plot_width + 6}" '
                       f'y="{(high + low) / 2 + 4:.1f}">{escape(band.display)}</text>')
        out.append(f'<text class="axis-label" x="{size.left - 6}" '
                   f'y="{y(band.low) + 4:.1f}" text-anchor="end">{band.low}</text>')
    bottom = size.top + size.plot_height
    out.append(f'<line class="axis" x1="{size.left}" y1="{bottom}" '
               f'x2="{size.left + size.plot_width}" y2="{bottom}"/>')
    out.append(f'<line class="axis" x1="{size.left}" y1="{size.top}" x2="{size.left}" '
               f'y2="{bottom}"/>')
    coords = [(x(t), y(p.value)) for t, p in zip(times, points, strict=True)]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        out.append(f'<polyline class="line" points="{path}"/>')
    step = max(1, -(-len(points) // _MAX_DATE_LABELS))
    for index, ((cx, cy), point) in enumerate(zip(coords, points, strict=True)):
        day = point.when.astimezone(zone).strftime("%Y-%m-%d")
        out.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" '
                   f'r="{3 if compact else 5}"><title>{day}: {_number(point.value)} '
                   f'{escape(point.band)}</title></circle>')
        if index % step == 0 or index == len(points) - 1:
            out.append(f'<text class="axis-label" x="{cx:.1f}" y="{bottom + 16}" '
                       f'text-anchor="middle">{day[5:] if compact else day}</text>')
    out.append("</svg>")
    return Markup("".join(out))
