"""Witnesses: a second (or third) person who re-authenticated for this very entry.

A witness types their password at ``POST /auth/reauth`` (optionally with
``action=ledger-witness``) and hands the single-use signing assertion to the person recording
the entry, who sends it with the request. The assertion is checked and consumed in the entry's
transaction, so it witnesses exactly one entry; the witness must be an active user with a
permitted role, and can be neither the performer nor the other witness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from ehr.auth.reauth import SigningAssertions
from ehr.auth.users import Users, normalise_username
from ehr.context import Actor
from ehr.errors import BadRequest, Forbidden, Issue, Unprocessable

WITNESS_ACTION = "ledger-witness"


@dataclass(frozen=True)
class WitnessProof:
    username: str
    assertion: str


@dataclass(frozen=True)
class Witness:
    id: str
    display: str


@dataclass(frozen=True)
class WitnessCheck:
    """What verifying witnesses needs from the identity layer (the app's ``AuthService``)."""

    assertions: SigningAssertions
    users: Users


def _same_person(performer: Actor, username: str, practitioner: str | None) -> bool:
    if performer.kind == "user" and performer.id.strip().lower() == username:
        return True
    return bool(performer.practitioner and practitioner == performer.practitioner)


def verify(session: Session, check: WitnessCheck, performer: Actor,
           proofs: Sequence[WitnessProof], *, roles: frozenset[str], needed: int,
           what: str) -> list[Witness]:
    """The verified witnesses, or a refusal naming every problem found before any
    assertion is consumed (422 for who they are, 403 for a failed re-authentication)."""
    if len(proofs) != needed:
        raise BadRequest(f"{what} needs {needed} witness{'es' if needed > 1 else ''}, "
                         f"{len(proofs)} given", expression=("witnesses",))
    names = [normalise_username(p.username) for p in proofs]
    problems: list[str] = []
    if len(set(names)) != len(names):
        problems.append(f"the witnesses of a {what} must be different people")
    users = []
    for name in names:
        user = check.users.get(session, name)
        if user is None or not user.active:
            raise Forbidden(f"witness {name!r} is not an active user")
        users.append(user)
        if _same_person(performer, name, user.practitioner):
            problems.append(f"witness {name!r} is the person recording the {what}: a witness "
                            "must be a second, different person")
        if not user.roles & roles:
            problems.append(f"witness {name!r} does not hold a role that may witness a {what} "
                            f"({', '.join(sorted(roles))})")
    if problems:
        raise Unprocessable(issues=[Issue("business-rule", p, "error", ("witnesses",))
                                    for p in problems])
    verified = []
    for proof, user in zip(proofs, users, strict=True):
        assertion = check.assertions.verify(session, proof.assertion, user.username,
                                            WITNESS_ACTION)
        verified.append(Witness(user.username, assertion.display_name or user.display_name))
    return verified
