"""The session's vital signs as server-rendered inline SVG (no script), thresholds marked.

Two panels: blood pressure and heart rate (one scale: mm Hg and beats/minute share a range),
and SpO2 (its own narrow scale, where a fall matters). The alert lines come from the
monitoring protocol (``monitoring.json`` ``alert_thresholds``), so a clinician who changes a
threshold there moves the line here too. Each point carries a ``<title>``; the page shows
the same values in a table for screen readers and for print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from markupsafe import Markup, escape

from ehr.clinical.sessions.measures import MEASURES
from ehr.clinical.sessions.protocol import MonitoringProtocol

WIDTH, HEIGHT = 680, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 130, 12, 52
_MAX_TIME_LABELS = 6
_SHORT = {"systolic": "SBP", "diastolic": "DBP", "heart-rate": "HR", "spo2": "SpO2",
          "moaas": "MOAA/S"}


@dataclass
class VitalsPoint:
    """One flowsheet time point: the values recorded at ``when`` (by measure key)."""

    when: datetime
    values: dict[str, float] = field(default_factory=dict)
    breaches: dict[str, str] = field(default_factory=dict)  # measure -> "above 180"


@dataclass(frozen=True)
class Panel:
    title: str
    measures: tuple[str, ...]
    floor: float  # the scale shows at least floor..ceiling
    ceiling: float
    unit: str


PANELS = (Panel("Blood pressure and heart rate", ("systolic", "diastolic", "heart-rate"),
                40, 200, "mm Hg / per minute"),
          Panel("Oxygen saturation (SpO2)", ("spo2",), 85, 100, "%"))


def _fmt(value: float) -> str:
    return f"{value:g}"


def _threshold_lines(panel: Panel, protocol: MonitoringProtocol) -> list[tuple[str, float, str]]:
    """(measure, value, words) per alert bound of the panel's measures."""
    out: list[tuple[str, float, str]] = []
    for key in panel.measures:
        threshold = protocol.threshold(key)
        if threshold is None:
            continue
        for bound, words in ((threshold.above, ">"), (threshold.below, "<"),
                             (threshold.at_most, "<=")):
            if bound is not None:
                out.append((key, float(bound), f"{_SHORT.get(key, key)} alert {words} "
                                               f"{_fmt(float(bound))}"))
    return out


def _panel_svg(panel: Panel, points: list[VitalsPoint], protocol: MonitoringProtocol,
               zone: tzinfo, index: int) -> Markup:
    lines = _threshold_lines(panel, protocol)
    values = [p.values[k] for p in points for k in panel.measures if k in p.values]
    low = min([panel.floor, *values, *(v for _, v, _ in lines)]) if values else panel.floor
    high = max([panel.ceiling, *values, *(v for _, v, _ in lines)])
    low, high = low - (high - low) * 0.04, high + (high - low) * 0.04
    times = [p.when.timestamp() for p in points] or [0.0]
    start, end = min(times), max(times)
    if end - start < 600:
        start, end = start - 300, end + 300
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + (moment.timestamp() - start) / (end - start) * plot_w

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_h

    title_id, desc_id = f"vitals-chart-{index}-title", f"vitals-chart-{index}-desc"
    parts = [f'<svg class="chart vitals" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{title_id} {desc_id}">',
             f'<title id="{title_id}">{escape(panel.title)}</title>',
             f'<desc id="{desc_id}">{len(points)} time points; alert thresholds: '
             f'{escape(", ".join(w for _, _, w in lines) or "none")}. The table below lists '
             'every value.</desc>',
             f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
             f'y2="{TOP + plot_h}"/>',
             f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>']
    for tick in _ticks(low, high):
        parts.append(f'<text class="axis-label" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
                     f'text-anchor="end">{_fmt(tick)}</text>')
    label_y = _spread(sorted(y(value) + 4 for _, value, _ in lines))
    for (key, value, words), at in zip(sorted(lines, key=lambda line: -line[1]), label_y,
                                       strict=True):
        parts.append(f'<line class="threshold t-{key}" x1="{LEFT}" y1="{y(value):.1f}" '
                     f'x2="{LEFT + plot_w}" y2="{y(value):.1f}"><title>{escape(words)}</title>'
                     '</line>')
        parts.append(f'<text class="threshold-label" x="{LEFT + plot_w + 6}" '
                     f'y="{at:.1f}">{escape(words)}</text>')
    for shown in _time_labels(points):
        parts.append(f'<text class="axis-label" x="{x(shown.when):.1f}" '
                     f'y="{TOP + plot_h + 18}" text-anchor="middle">'
                     f'{shown.when.astimezone(zone).strftime("%H:%M")}</text>')
    for key in panel.measures:
        series = [(p, p.values[key]) for p in points if key in p.values]
        if len(series) > 1:
            path = " ".join(f"{x(p.when):.1f},{y(v):.1f}" for p, v in series)
            parts.append(f'<polyline class="series s-{key}" points="{path}"/>')
        for p, v in series:
            css = "point breach" if key in p.breaches else "point"
            label = (f"{MEASURES[key].text} {_fmt(v)} at "
                     f"{p.when.astimezone(zone).strftime('%H:%M')}"
                     + (f" ({p.breaches[key]})" if key in p.breaches else ""))
            parts.append(f'<circle class="{css} s-{key}" cx="{x(p.when):.1f}" '
                         f'cy="{y(v):.1f}" r="{6 if key in p.breaches else 4}">'
                         f'<title>{escape(label)}</title></circle>')
    # The legend runs under the time axis, clear of the threshold labels on the right.
    for i, key in enumerate(panel.measures):
        parts.append(f'<text class="legend s-{key}" x="{LEFT + 160 * i}" '
                     f'y="{HEIGHT - 8}">● {escape(MEASURES[key].text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _spread(positions: list[float], gap: float = 12) -> list[float]:
    """Label positions (top to bottom) pushed apart so that no two overlap."""
    out: list[float] = []
    for at in positions:
        out.append(max(at, out[-1] + gap) if out else at)
    return out


def _ticks(low: float, high: float) -> list[float]:
    step = 20.0 if high - low > 60 else 5.0
    first = (int(low / step) + 1) * step
    out, tick = [], first
    while tick < high:
        out.append(tick)
        tick += step
    return out


def _time_labels(points: list[VitalsPoint]) -> list[VitalsPoint]:
    if len(points) <= _MAX_TIME_LABELS:
        return points
    step = (len(points) - 1) / (_MAX_TIME_LABELS - 1)
    return [points[round(i * step)] for i in range(_MAX_TIME_LABELS)]


def vitals_charts(points: list[VitalsPoint], protocol: MonitoringProtocol,
                  zone: tzinfo) -> list[tuple[str, Markup]]:
    """(panel title, inline SVG) per panel; an empty list when nothing is charted yet."""
    charted = [p for p in points if any(k in p.values for panel in PANELS
                                        for k in panel.measures)]
    if not charted:
        return []
    return [(panel.title, _panel_svg(panel, [p for p in charted
                                             if any(k in p.values for k in panel.measures)],
                                     protocol, zone, i))
            for i, panel in enumerate(PANELS)]
