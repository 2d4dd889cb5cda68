"""The session monitoring protocol: alert thresholds, schedules, discharge and REMS limits.

The values live in ``ehr/clinical/protocols/monitoring.json`` (defaults from the clinical
reference, section 3) so a clinician can change them without a code change; this module only
gives them types. ``load_protocol(path)`` reads another file (a site's own protocol, tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "protocols" / "monitoring.json"
MINUTE_US = 60_000_000


@dataclass(frozen=True)
class Threshold:
    """Alert when a value is ``> above``, ``< below`` or ``<= at_most`` (absent: no bound)."""

    measure: str
    above: float | None = None
    below: float | None = None
    at_most: float | None = None

    def breached(self, value: float) -> str | None:
        """Words for the breach, or None when the value is within this threshold."""
        if self.above is not None and value > self.above:
            return f"above {_num(self.above)}"
        if self.below is not None and value < self.below:
            return f"below {_num(self.below)}"
        if self.at_most is not None and value <= self.at_most:
            return f"at or below {_num(self.at_most)}"
        return None


@dataclass(frozen=True)
class RouteProtocol:
    name: str
    snomed_routes: tuple[str, ...]
    rxnorm_medications: tuple[str, ...]
    min_observation_minutes: int
    pre_dose: tuple[str, ...]
    during_infusion_every: int | None
    after_dose_every: int | None
    after_dose_at: tuple[int, ...]
    before_discharge: tuple[str, ...]
    timed: tuple[str, ...]  # measured at the interval and fixed time points
    rems_form: bool = False


@dataclass(frozen=True)
class MonitoringProtocol:
    thresholds: tuple[Threshold, ...]
    near_baseline_fraction: float
    near_baseline_measures: tuple[str, ...]
    required_moaas: int
    last_vitals_max_age_minutes: int
    rems_due_days: int
    dissociation_cadss_above: float
    tolerance_minutes: int
    routes: tuple[RouteProtocol, ...]

    def route(self, snomed_route: str | None, rxnorm: tuple[str, ...] = ()) -> RouteProtocol:
        """The route protocol for an administration's route and medication codes."""
        for route in self.routes:
            if snomed_route in route.snomed_routes or set(rxnorm) & set(route.rxnorm_medications):
                return route
        return self.named("default")

    def named(self, name: str) -> RouteProtocol:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    def threshold(self, measure: str) -> Threshold | None:
        return next((t for t in self.thresholds if t.measure == measure), None)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _route(name: str, raw: dict[str, Any]) -> RouteProtocol:
    return RouteProtocol(
        name=name,
        snomed_routes=tuple(raw.get("snomed_routes") or ()),
        rxnorm_medications=tuple(raw.get("rxnorm_medications") or ()),
        min_observation_minutes=int(raw["min_observation_minutes"]),
        pre_dose=tuple(raw.get("pre_dose") or ()),
        during_infusion_every=raw.get("during_infusion_every"),
        after_dose_every=raw.get("after_dose_every"),
        after_dose_at=tuple(int(m) for m in raw.get("after_dose_at") or ()),
        before_discharge=tuple(raw.get("before_discharge") or ()),
        timed=tuple(raw.get("timed") or ()),
        rems_form=bool(raw.get("rems_form", False)),
    )


def parse_protocol(raw: dict[str, Any]) -> MonitoringProtocol:
    thresholds = tuple(
        Threshold(measure, bounds.get("above"), bounds.get("below"), bounds.get("at_most"))
        for measure, bounds in raw["alert_thresholds"].items())
    routes = tuple(_route(name, body) for name, body in raw["routes"].items())
    if "default" not in {r.name for r in routes}:
        raise ValueError("the monitoring protocol needs a 'default' route")
    return MonitoringProtocol(
        thresholds=thresholds,
        near_baseline_fraction=float(raw["near_baseline"]["fraction"]),
        near_baseline_measures=tuple(raw["near_baseline"]["measures"]),
        required_moaas=int(raw["discharge"]["required_moaas"]),
        last_vitals_max_age_minutes=int(raw["discharge"]["last_vitals_max_age_minutes"]),
        rems_due_days=int(raw["rems"]["due_days"]),
        dissociation_cadss_above=float(raw["rems"]["dissociation_cadss_above"]),
        tolerance_minutes=int(raw["schedule_tolerance_minutes"]),
        routes=routes,
    )


def load_protocol(path: Path) -> MonitoringProtocol:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return parse_protocol(raw)


@lru_cache(maxsize=1)
def default_protocol() -> MonitoringProtocol:
    return load_protocol(DEFAULT_PATH)
