"""Which gates a dose would pass if it were charted now, without charting it.

The session page shows the pre-dose checklist before anyone presses "chart". It must show
exactly what the write rule will decide, so this runs the rule's own :class:`Gatekeeper` on the
proposed MedicationAdministration inside a throw-away :class:`Change`: the same eligibility,
flag, vitals, maximum, interval, order and ledger checks, nothing re-implemented. Nothing is
written: the Change's ``after_store`` (the ledger draw) never runs and no version is stored.
The gates take the same locks as a real charting (the patient's dosing lock, the lot's balance
row), held only until the caller's read transaction ends.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlmodel import Session

from ehr.auth.reauth import InvalidSigningAssertion, SigningAssertion
from ehr.clinical.dosing.administration import read_dose
from ehr.clinical.dosing.gates import MA, Gatekeeper
from ehr.clinical.dosing.protocol import DosingProtocol
from ehr.context import RequestContext
from ehr.errors import Issue
from ehr.store.hooks import Change

DRY_RUN_ID = "dry-run"


class _NoSignatures:
    """A dry run never carries an override: a signature is only ever checked by the write."""

    def verify(self, session: Session, token: str, expected_user: str,
               action: str) -> SigningAssertion:
        raise InvalidSigningAssertion("a dry run does not check signatures")


def dry_run(session: Session, ctx: RequestContext, protocol: DosingProtocol,
            administration: dict[str, Any], now_us: int) -> list[Issue]:
    """Every error and warning the dosing gates would give ``administration`` at ``now_us``
    for the user in ``ctx`` (an empty list: it would be stored without a word)."""
    proposed = copy.deepcopy(administration)
    change = Change("create", MA, DRY_RUN_ID, proposed, None)
    dose = read_dose(proposed, protocol)
    # An override is decided by the write alone (its assertion is single use): the dry run
    # shows the failures it would have to cover.
    dose.override = None
    Gatekeeper(protocol, _NoSignatures()).check(session, ctx, change, dose, now_us)
    return list(change.issues)

