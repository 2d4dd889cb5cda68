"""The dosing protocol as data: routes, maxima, pre-dose vitals, intervals, drug codes.

Everything the dosing gate compares against comes from ``protocol.json`` next to this module
(the reference's defaults) or from the file named by ``EHR_DOSING_PROTOCOL_FILE``; the code holds
no clinical limit of its own. The file is read and checked once, here, at start-up: a protocol
with a missing or nonsensical limit stops the service instead of dosing without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any


class ProtocolError(ValueError):
    """The protocol file is unusable (named field and why)."""


@dataclass(frozen=True)
class Code:
    code: str
    display: str
    verify: bool = False


@dataclass(frozen=True)
class Drug:
    key: str
    display: str
    rxnorm: tuple[Code, ...]
    ndc: tuple[Code, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    key: str
    display: str
    snomed: str
    drugs: tuple[str, ...]
    mode: str  # "mg/kg" | "fixed"
    max_mg_per_kg: Decimal | None
    max_mg: Decimal | None
    infusion: bool
    infusion_minutes: int | None
    usual: tuple[Decimal, Decimal] | None

    @property
    def weight_based(self) -> bool:
        return self.mode == "mg/kg"


@dataclass(frozen=True)
class Measurement:
    """One pre-dose vital sign: how to find it and when it stops a dose."""

    key: str
    display: str
    codes: tuple[str, ...]  # LOINC codes of single Observations
    unit: str
    below: Decimal | None
    above: Decimal | None
    missing: str  # "error" | "warning"
    out_of_range: str
    # Blood pressure only: the panel and its component codes.
    panel: str | None = None
    systolic: str | None = None
    diastolic: str | None = None
    diastolic_above: Decimal | None = None


@dataclass(frozen=True)
class DosingProtocol:
    version: str
    drugs: dict[str, Drug]
    routes: dict[str, Route]
    min_interval_hours: Decimal
    warn_sessions_per_7_days: int
    window_minutes: int
    measurements: dict[str, Measurement]
    overridable: frozenset[str]
    weight_loinc: str
    weight_max_age_days: int
    weight_warn_not_today: bool
    mg_per_kg_tolerance: Decimal
    future_skew_minutes: int

    def route_by_snomed(self, code: str) -> Route | None:
        return next((r for r in self.routes.values() if r.snomed == code), None)

    def drug_by_code(self, system: str, code: str) -> Drug | None:
        for drug in self.drugs.values():
            codes = drug.rxnorm if system == "rxnorm" else drug.ndc
            if any(c.code == code for c in codes):
                return drug
        return None

    def drug_by_name(self, text: str) -> Drug | None:
        lowered = text.lower()
        # Longest name first: "esketamine" must not be read as "ketamine".
        names = sorted(((n, d) for d in self.drugs.values() for n in d.names),
                       key=lambda item: -len(item[0]))
        return next((d for n, d in names if n.lower() in lowered), None)


def _dec(value: Any, where: str, *, optional: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProtocolError(f"{where}: a number is required")
    number = Decimal(str(value))
    if number < 0:
        raise ProtocolError(f"{where}: must not be negative")
    return number


def _req(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ProtocolError(f"{where}.{key} is missing")
    return data[key]


def _codes(items: Any, where: str) -> tuple[Code, ...]:
    if not isinstance(items, list):
        raise ProtocolError(f"{where}: a list is required")
    return tuple(Code(str(_req(i, "code", where)), str(i.get("display", "")),
                      bool(i.get("verify", False))) for i in items)


def _route(key: str, data: dict[str, Any], drugs: dict[str, Drug]) -> Route:
    where = f"routes.{key}"
    mode = _req(data, "mode", where)
    if mode not in ("mg/kg", "fixed"):
        raise ProtocolError(f"{where}.mode must be 'mg/kg' or 'fixed'")
    max_kg = _dec(data.get("max_mg_per_kg"), f"{where}.max_mg_per_kg", optional=True)
    max_mg = _dec(data.get("max_mg"), f"{where}.max_mg", optional=True)
    if mode == "mg/kg" and max_kg is None:
        raise ProtocolError(f"{where}: a weight-based route needs max_mg_per_kg")
    if mode == "fixed" and max_mg is None:
        raise ProtocolError(f"{where}: a fixed-dose route needs max_mg")
    route_drugs = tuple(_req(data, "drugs", where))
    unknown = [d for d in route_drugs if d not in drugs]
    if unknown or not route_drugs:
        raise ProtocolError(f"{where}.drugs names no known drug: {unknown}")
    usual_raw = data.get("usual_mg_per_kg" if mode == "mg/kg" else "usual_mg")
    usual = None
    if isinstance(usual_raw, list) and len(usual_raw) == 2:
        low, high = (_dec(v, f"{where}.usual") for v in usual_raw)
        assert low is not None and high is not None
        usual = (low, high)
    minutes = data.get("infusion_minutes")
    return Route(key, str(data.get("display", key)), str(_req(data, "snomed", where)),
                 route_drugs, mode, max_kg, max_mg, bool(data.get("infusion", False)),
                 int(minutes) if minutes is not None else None, usual)


def _measurement(key: str, data: dict[str, Any]) -> Measurement:
    where = f"pre_dose.measurements.{key}"
    severities = {data.get("missing", "error"), data.get("out_of_range", "error")}
    if not severities <= {"error", "warning"}:
        raise ProtocolError(f"{where}: missing/out_of_range must be 'error' or 'warning'")
    if "loinc_panel" in data:
        return Measurement(
            key, str(data.get("display", key)), (), str(data.get("unit", "")), None,
            _dec(_req(data, "refuse_systolic_above", where), where, optional=True),
            data.get("missing", "error"), data.get("out_of_range", "error"),
            panel=str(data["loinc_panel"]), systolic=str(_req(data, "loinc_systolic", where)),
            diastolic=str(_req(data, "loinc_diastolic", where)),
            diastolic_above=_dec(_req(data, "refuse_diastolic_above", where), where,
                                 optional=True))
    codes = (str(_req(data, "loinc", where)), *map(str, data.get("loinc_alternates", [])))
    return Measurement(key, str(data.get("display", key)), codes, str(data.get("unit", "")),
                       _dec(data.get("refuse_below"), where, optional=True),
                       _dec(data.get("refuse_above"), where, optional=True),
                       data.get("missing", "error"), data.get("out_of_range", "error"))


def parse_protocol(data: dict[str, Any]) -> DosingProtocol:
    """A checked protocol from its JSON form (ProtocolError names what is wrong)."""
    drugs = {k: Drug(k, str(v.get("display", k)), _codes(v.get("rxnorm", []), f"drugs.{k}"),
                     _codes(v.get("ndc", []), f"drugs.{k}"),
                     tuple(str(n) for n in v.get("names", [])))
             for k, v in _req(data, "drugs", "protocol").items()}
    routes = {k: _route(k, v, drugs) for k, v in _req(data, "routes", "protocol").items()}
    sessions = _req(data, "sessions", "protocol")
    pre = _req(data, "pre_dose", "protocol")
    measurements = {k: _measurement(k, v)
                    for k, v in _req(pre, "measurements", "pre_dose").items()}
    weight = _req(data, "weight", "protocol")
    interval = _dec(_req(sessions, "min_interval_hours", "sessions"), "sessions")
    tolerance = _dec(weight.get("mg_per_kg_tolerance", 0.01), "weight.mg_per_kg_tolerance")
    assert interval is not None and tolerance is not None
    return DosingProtocol(
        version=str(data.get("version", "")),
        drugs=drugs,
        routes=routes,
        min_interval_hours=interval,
        warn_sessions_per_7_days=int(_req(sessions, "warn_sessions_per_7_days", "sessions")),
        window_minutes=int(_req(pre, "window_minutes", "pre_dose")),
        measurements=measurements,
        overridable=frozenset(pre.get("overridable", [])),
        weight_loinc=str(_req(weight, "loinc", "weight")),
        weight_max_age_days=int(_req(weight, "max_age_days", "weight")),
        weight_warn_not_today=bool(weight.get("warn_if_not_on_the_day", False)),
        mg_per_kg_tolerance=tolerance,
        future_skew_minutes=int((data.get("charting") or {}).get("future_skew_minutes", 5)),
    )


@lru_cache(maxsize=8)
def load_protocol(path: Path | None = None) -> DosingProtocol:
    """The protocol in ``path``, or the shipped defaults when None."""
    if path is None:
        text = resources.files("ehr.clinical.dosing").joinpath("protocol.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"dosing protocol {path or 'protocol.json'} is not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("the dosing protocol must be a JSON object")
    return parse_protocol(data)
