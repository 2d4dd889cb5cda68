"""The eligibility protocol: rules over checklist answers and safety flags, as data.

The rules live in ``protocols/eligibility.json`` (defaults from the clinical reference); this
module is the one place that reads them. A rule fires when ANY of its ``when`` conditions holds:
``{"item": linkId, "equals": value}``, ``{"item": linkId, "above": number}`` (strictly
greater) or ``{"active_flag": {"kinds": [...], "blocks_dosing": bool}}`` (an active Flag of the
patient of one of those kinds, or carrying the blocks-dosing tag when ``blocks_dosing``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from ehr.clinical.flags import blocks_dosing, flag_kind
from ehr.clinical.screening_checklist import ITEMS, Answer

HARD_STOP = "hard-stop"
NEEDS_REVIEW = "needs-review"
KINDS = (HARD_STOP, NEEDS_REVIEW)
DEFAULT_FILE = Path(__file__).with_name("protocols") / "eligibility.json"
# A site copy of the protocol (same format) replaces the shipped defaults when set.
PROTOCOL_ENV = "EHR_ELIGIBILITY_PROTOCOL_FILE"
_US_PER_DAY = 86_400 * 1_000_000


class ProtocolError(ValueError):
    """The protocol file is malformed: the service must not start on a half-read protocol."""


@dataclass(frozen=True)
class Condition:
    item: str | None = None
    equals: bool | None = None
    above: Decimal | None = None
    flag_kinds: tuple[str, ...] = ()
    flag_blocks_dosing: bool = False

    def holds(self, answers: Mapping[str, Answer], flags: Iterable[dict[str, Any]]) -> bool:
        if self.item is None:
            return any(self._flag_matches(f) for f in flags)
        value = answers.get(self.item)
        if value is None:
            return False
        if self.equals is not None:
            return value is self.equals
        return not isinstance(value, bool) and self.above is not None and value > self.above

    def _flag_matches(self, flag: dict[str, Any]) -> bool:
        if flag.get("status") != "active":
            return False
        return flag_kind(flag) in self.flag_kinds or (self.flag_blocks_dosing
                                                      and blocks_dosing(flag))

    @property
    def uses_flags(self) -> bool:
        return self.item is None


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str  # HARD_STOP | NEEDS_REVIEW
    text: str
    when: tuple[Condition, ...]

    def fires(self, answers: Mapping[str, Answer], flags: Iterable[dict[str, Any]]) -> bool:
        flag_list = list(flags)
        return any(c.holds(answers, flag_list) for c in self.when)


@dataclass(frozen=True)
class Protocol:
    version: str
    checklist: str
    decision_valid_days: int
    rules: tuple[Rule, ...]

    @property
    def valid_us(self) -> int:
        return self.decision_valid_days * _US_PER_DAY

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def evaluate(self, answers: Mapping[str, Answer],
                 flags: Iterable[dict[str, Any]] = ()) -> list[Rule]:
        """The rules that fire, hard stops first, in protocol order."""
        flag_list = list(flags)
        fired = [r for r in self.rules if r.fires(answers, flag_list)]
        return sorted(fired, key=lambda r: KINDS.index(r.kind))

    def fired_by_flag(self, rule: Rule, flags: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The flags that made ``rule`` fire (for the decision's ``derivedFrom``)."""
        return [f for f in flags for c in rule.when if c.uses_flags and c.holds({}, [f])]


def load_protocol(path: Path | None = None) -> Protocol:
    """Read and check a protocol file (the shipped defaults, or the site copy)."""
    source = path or Path(os.environ.get(PROTOCOL_ENV) or DEFAULT_FILE)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read eligibility protocol {source}: {exc}") from exc
    return parse_protocol(data, str(source))


@lru_cache(maxsize=1)
def default_protocol() -> Protocol:
    return load_protocol()


def parse_protocol(data: Any, source: str = "protocol") -> Protocol:
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: a JSON object expected")
    days = data.get("decision_valid_days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ProtocolError(f"{source}: decision_valid_days must be a positive integer")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ProtocolError(f"{source}: rules must be a non-empty list")
    rules = tuple(_rule(r, f"{source} rules[{i}]") for i, r in enumerate(raw_rules))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ProtocolError(f"{source}: rule ids must be unique")
    return Protocol(str(data.get("version") or ""), str(data.get("checklist") or ""), days,
                    rules)


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: an object expected")
    rule_id, kind, text, when = raw.get("id"), raw.get("kind"), raw.get("text"), raw.get("when")
    if not isinstance(rule_id, str) or not rule_id or not isinstance(text, str) or not text:
        raise ProtocolError(f"{where}: id and text are required")
    if kind not in KINDS:
        raise ProtocolError(f"{where}: kind must be one of {', '.join(KINDS)}")
    if not isinstance(when, list) or not when:
        raise ProtocolError(f"{where}: when must be a non-empty list of conditions")
    return Rule(rule_id, str(kind), text, tuple(_condition(c, f"{where}.when") for c in when))


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: an object expected")
    if "active_flag" in raw:
        spec = raw["active_flag"]
        kinds = spec.get("kinds") if isinstance(spec, dict) else None
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ProtocolError(f"{where}: active_flag needs a list of kinds")
        return Condition(flag_kinds=tuple(kinds),
                         flag_blocks_dosing=bool(spec.get("blocks_dosing", False)))
    item = raw.get("item")
    if item not in ITEMS:
        raise ProtocolError(f"{where}: unknown checklist item {item!r}")
    if "equals" in raw and isinstance(raw["equals"], bool):
        return Condition(item=item, equals=raw["equals"])
    above = raw.get("above")
    if isinstance(above, int | float) and not isinstance(above, bool):
        return Condition(item=item, above=Decimal(str(above)))
    raise ProtocolError(f"{where}: a condition needs 'equals' (true/false) or 'above' (number)")
