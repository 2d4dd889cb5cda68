"""A physician's signed override of failed pre-dose vitals.

The override travels inside the MedicationAdministration, so it reaches the gate through every
write path (REST, transaction and batch entries, ``ehr load``)::

    {"url": ".../StructureDefinition/dosing-override", "extension": [
        {"url": "reason", "valueString": "BP 186/104 after a stressful drive; re-checked ..."},
        {"url": "assertion", "valueString": "<signing assertion from POST /auth/reauth>"}]}

The assertion (action ``dosing-override``) proves the physician typed their password moments
ago; it is consumed here (single use) and never stored. In its place the server writes who
signed, when they re-authenticated and which failures the override covered, so the stored
record shows the decision without carrying a credential.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlmodel import Session

from ehr import instants
from ehr.auth.reauth import InvalidSigningAssertion, SigningAssertion
from ehr.clinical.dosing.administration import OVERRIDE_URL, Override
from ehr.clinical.dosing.vitals import Finding
from ehr.context import RequestContext
from ehr.store.hooks import Change

ACTION = "dosing-override"
OVERRIDE_ROLE = "physician"
_SERVER_PARTS = ("signer", "signerName", "reauthenticated", "overrides")


class AssertionVerifier(Protocol):
    def verify(self, session: Session, token: str, expected_user: str,
               action: str) -> SigningAssertion: ...


def apply_override(session: Session, ctx: RequestContext, change: Change,
                   override: Override | None, failures: list[Finding],
                   verifier: AssertionVerifier, overridable: frozenset[str]) -> None:
    """Refuse ``failures`` unless a valid override covers them; record a used override.

    An override sent with nothing to cover is still checked and recorded: a stored override
    must always be a verified one.
    """
    if override is None:
        for f in failures:
            change.error("business-rule", f.text)
        return
    path = f"MedicationAdministration.extension[{override.index}]"
    problems, assertion = _verify(session, ctx, override, verifier)
    covered = [f for f in failures if f.measurement in overridable]
    for f in failures:
        if f not in covered:
            change.error("business-rule", f"{f.text} (not overridable)")
    if assertion is None:
        for text in problems:
            change.error("security" if "assertion" in text else "business-rule", text, path)
        for f in covered:
            change.error("business-rule", f"{f.text} (override not accepted)")
        return
    signer = assertion.display_name or assertion.username
    for f in covered:
        change.warning("business-rule", f"{f.text}; overridden by {signer}", path)
    _record(change, override, assertion, covered)


def _verify(session: Session, ctx: RequestContext, override: Override,
            verifier: AssertionVerifier) -> tuple[list[str], SigningAssertion | None]:
    problems: list[str] = []
    if ctx.actor.kind != "user" or OVERRIDE_ROLE not in ctx.actor.roles:
        problems.append("only a physician, signed in as themselves, may override pre-dose "
                        "vitals")
    if override.reason is None:
        problems.append("the override needs a typed reason (extension 'reason')")
    if override.signer is not None:
        problems.append("the override's signer is written by the server, not the client")
    if override.assertion is None:
        problems.append("the override needs a signing assertion from POST /auth/reauth "
                        f"(action {ACTION!r}) in extension 'assertion'")
    if problems or override.assertion is None:
        return problems, None
    try:
        return [], verifier.verify(session, override.assertion, ctx.actor.id, ACTION)
    except InvalidSigningAssertion as err:
        return [f"override signing assertion refused: {err.diagnostics}"], None


def _record(change: Change, override: Override, assertion: SigningAssertion,
            covered: list[Finding]) -> None:
    assert change.resource is not None
    extensions: list[Any] = list(change.resource.get("extension") or [])
    parts = [e for e in extensions[override.index].get("extension") or []
             if isinstance(e, dict) and e.get("url") not in ("assertion", *_SERVER_PARTS)]
    parts += [
        {"url": "signer", "valueString": assertion.username},
        {"url": "signerName", "valueString": assertion.display_name or assertion.username},
        {"url": "reauthenticated",
         "valueInstant": instants.instant(assertion.authenticated_at * 1_000_000)},
    ]
    parts += [{"url": "overrides", "valueString": f.text} for f in covered]
    extensions[override.index] = {"url": OVERRIDE_URL, "extension": parts}
    change.resource["extension"] = extensions
