"""Write hooks: where clinical rules plug into the one write path.

The store never learns what a rule checks. A rule sees the proposed change inside the request's
transaction, may add issues to the outcome (errors refuse the write, warnings ride along on
success) and may write other resources through the ``session`` it is given. Every rule for a
resource type runs before the write is refused, so one response lists every failed rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from ehr.context import RequestContext
from ehr.errors import EhrError, Issue
from ehr.store.repository import StoredResource


@dataclass
class Derived:
    """A resource a rule asks the write path to store after the triggering write.

    ``rid`` None creates a new resource; otherwise the resource with that id is created or
    updated. Derived writes pass validation, the rules of their own type and the audit trail,
    but not the caller's type permission: the rule, not the caller, decided to write them
    (a therapist's PHQ-9 response yields a score Observation and perhaps a Flag).
    """

    rtype: str
    resource: dict[str, Any]
    rid: str | None = None


@dataclass
class Change:
    """A proposed write: ``resource`` is None for a delete; ``prior`` is the current version."""

    interaction: str  # "create" | "update" | "delete"
    rtype: str
    rid: str
    resource: dict[str, Any] | None
    prior: StoredResource | None
    issues: list[Issue] = field(default_factory=list)
    # Set by rules that need to act after the version is stored (e.g. score Observations).
    after_store: list[Callable[[Session, StoredResource], None]] = field(default_factory=list)
    # Resources to write, through the same write path, once this version is stored.
    derived: list[Derived] = field(default_factory=list)

    @property
    def version(self) -> int:
        """The version id this write will get (for version-specific references)."""
        return 1 if self.prior is None else self.prior.version_id + 1

    def derive(self, rtype: str, resource: dict[str, Any], rid: str | None = None) -> None:
        self.derived.append(Derived(rtype, resource, rid))

    def error(self, code: str, diagnostics: str, *expression: str) -> None:
        self.issues.append(Issue(code, diagnostics, "error", tuple(expression)))

    def warning(self, code: str, diagnostics: str, *expression: str) -> None:
        self.issues.append(Issue(code, diagnostics, "warning", tuple(expression)))

    @property
    def refused(self) -> bool:
        return any(i.severity in ("error", "fatal") for i in self.issues)


WriteRule = Callable[[Session, RequestContext, Change], None]


class RuleRegistry:
    """Rules keyed by resource type; ``"*"`` applies to every type."""

    def __init__(self) -> None:
        self._rules: dict[str, list[WriteRule]] = defaultdict(list)

    def register(self, rtype: str, rule: WriteRule) -> None:
        self._rules[rtype].append(rule)

    def rules_for(self, rtype: str) -> list[WriteRule]:
        return [*self._rules.get("*", ()), *self._rules.get(rtype, ())]

    def apply(self, session: Session, ctx: RequestContext, change: Change) -> None:
        """Run every rule; a rule that raises (e.g. ``Conflict`` for an illegal state
        transition: 409, not 422) sets the refusal's status, but the other rules still run and
        the refusal lists every issue."""
        raised: EhrError | None = None
        for rule in self.rules_for(change.rtype):
            try:
                rule(session, ctx, change)
            except EhrError as err:
                change.issues.extend(err.issues)
                raised = raised or err
        if raised is not None:
            raise type(raised)(issues=change.issues, headers=raised.headers)
