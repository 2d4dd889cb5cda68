"""Who may read a psychotherapy note's records: its author and the users a grant names.

A grant on a note covers what belongs to it (its addenda and the Provenances of its
signatures), now and later, so a reader never sees a note without its corrections.
"""

from __future__ import annotations

from sqlmodel import Session

from ehr.auth import grant_repository as grants
from ehr.store.repository import creator_of

# Records that belong to a note: addenda point at it through relatesTo, signatures through
# Provenance.target.
BELONGING = (("DocumentReference", "relatesto"), ("Provenance", "target"))


def note_readers(session: Session, note_rid: str) -> set[str]:
    """Author and active grantees of a note (user names)."""
    readers = grants.grantees(session, "DocumentReference", note_rid)
    author = creator_of(session, "DocumentReference", note_rid)
    if author:
        readers.add(author)
    return readers


def may_read(session: Session, note_rid: str, username: str) -> bool:
    return username in note_readers(session, note_rid)


def share_with_note_readers(session: Session, note_rid: str, rtype: str, rid: str, *,
                            writer: str, now: int) -> None:
    """Let the note's readers see a record just written for it (an addendum, a signature)."""
    for reader in note_readers(session, note_rid) - {writer}:
        grants.add_grant(session, rtype=rtype, rid=rid, grantee=reader, granted_by=writer,
                         reason=f"belongs to DocumentReference/{note_rid}", now=now)


def grant_note(session: Session, note_rid: str, *, grantee: str, granted_by: str, reason: str,
               now: int) -> list[str]:
    """Grant the note and everything that belongs to it; returns the references covered."""
    covered = [("DocumentReference", note_rid),
               *grants.referring(session, "DocumentReference", note_rid, BELONGING)]
    for rtype, rid in covered:
        grants.add_grant(session, rtype=rtype, rid=rid, grantee=grantee, granted_by=granted_by,
                         reason=reason, now=now)
    return [f"{t}/{i}" for t, i in covered]


def revoke_note(session: Session, note_rid: str, *, grantee: str, now: int) -> int:
    covered = [("DocumentReference", note_rid),
               *grants.referring(session, "DocumentReference", note_rid, BELONGING)]
    return sum(grants.revoke_grants(session, rtype=t, rid=i, grantee=grantee, now=now)
               for t, i in covered)
