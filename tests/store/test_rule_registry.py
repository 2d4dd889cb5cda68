"""A rule that raises sets the refusal's status; every other rule still runs and is listed."""

from __future__ import annotations

import pytest

from ehr.context import RequestContext
from ehr.errors import Conflict
from ehr.store.hooks import Change, RuleRegistry


def test_raised_status_with_every_issue() -> None:
    registry = RuleRegistry()
    ran: list[str] = []

    def conflict(session, ctx, change):  # type: ignore[no-untyped-def]
        ran.append("conflict")
        raise Conflict("illegal transition")

    def invalid(session, ctx, change):  # type: ignore[no-untyped-def]
        ran.append("invalid")
        change.error("invariant", "class must be AMB")

    registry.register("Encounter", conflict)
    registry.register("Encounter", invalid)
    change = Change("update", "Encounter", "1", {"resourceType": "Encounter"}, None)
    with pytest.raises(Conflict) as raised:
        registry.apply(None, RequestContext(), change)  # type: ignore[arg-type]
    assert ran == ["conflict", "invalid"]
    assert [i.diagnostics for i in raised.value.issues] == ["illegal transition",
                                                            "class must be AMB"]


def test_no_raise_leaves_the_refusal_to_the_writer() -> None:
    registry = RuleRegistry()
    registry.register("*", lambda s, c, ch: ch.error("invariant", "bad"))
    change = Change("create", "Flag", "1", {"resourceType": "Flag"}, None)
    registry.apply(None, RequestContext(), change)  # type: ignore[arg-type]
    assert change.refused
