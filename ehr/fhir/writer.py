"""The one write path: validate -> authorize -> clinical rules -> store version + index -> audit.

Every create, update and delete (REST, transaction entries, ``ehr load``, workflow services)
goes through ``Writer``. It only flushes: the caller's unit of work commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ehr import instants
from ehr.audit.events import patients_referenced
from ehr.context import RequestContext
from ehr.errors import Conflict, Issue, NotFound, PreconditionFailed, Unprocessable
from ehr.fhir import canonical_json
from ehr.fhir.conditional import find_one
from ehr.fhir.pipeline import AccessEvent, Pipeline
from ehr.fhir.search import index_values
from ehr.fhir.validation import ensure_valid
from ehr.store import repository
from ehr.store.hooks import Change, Derived
from ehr.store.index_writer import delete_index, replace_index
from ehr.store.repository import StoredResource


@dataclass
class WriteOutcome:
    """The result of one write: ``status`` is the HTTP status a REST client should see."""

    stored: StoredResource | None
    status: int
    issues: list[Issue] = field(default_factory=list)
    # What clinical rules wrote along with it (score Observations, Flags, ...).
    derived: list[StoredResource] = field(default_factory=list)


def patients_of(rtype: str, rid: str, resource: dict[str, Any] | None) -> tuple[str, ...]:
    """The patients a resource concerns (for the audit trail), from its usual elements."""
    if rtype == "Patient":
        return (rid,)
    return tuple(dict.fromkeys(patients_referenced(resource))) if resource else ()


class Writer:
    def __init__(self, pipeline: Pipeline, session: Session, ctx: RequestContext) -> None:
        self.pipeline = pipeline
        self.session = session
        self.ctx = ctx

    # -- interactions ---------------------------------------------------------------------

    def create(
        self,
        rtype: str,
        resource: dict[str, Any],
        *,
        if_none_exist: str | None = None,
        validate: bool = True,
        rid: str | None = None,
    ) -> WriteOutcome:
        """Create with a server-assigned id; ``rid`` lets a transaction assign that id first."""
        if validate:
            ensure_valid(resource, expected_type=rtype)
        if if_none_exist:
            found = find_one(self.pipeline, self.session, self.ctx, rtype, if_none_exist,
                             "If-None-Exist", serialize=True)
            if found is not None:
                # Nothing is written, but the caller learns of a record: that is audited.
                self.pipeline.recorder.record(self.session, self.ctx, AccessEvent(
                    "create", rtype, found.rid, found.version_id, 200,
                    patients_of(rtype, found.rid, canonical_json.loads(found.content or "{}")),
                    detail={"conditional": "matched existing"}))
                return WriteOutcome(found, 200)
        return self._store(rtype, rid or str(uuid.uuid4()), resource, prior=None,
                           interaction="create")

    def update(
        self,
        rtype: str,
        rid: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        validate: bool = True,
    ) -> WriteOutcome:
        if validate:
            ensure_valid(resource, expected_type=rtype, expected_id=rid, require_id=True)
        prior = repository.get_current(self.session, rtype, rid, lock=True)
        if if_match is not None:
            # Decide access before comparing versions: a 412 naming the current version would
            # tell an outsider that the record exists.
            self.pipeline.guard.authorize(
                self.session, self.ctx,
                "update" if prior is not None and not prior.deleted else "create", rtype,
                stored=prior)
        if if_match is not None and (prior is None or prior.version_id != if_match):
            current = "none" if prior is None else str(prior.version_id)
            raise PreconditionFailed(
                f"If-Match version {if_match} does not match current version {current}"
            )
        interaction = "update" if prior is not None and not prior.deleted else "create"
        return self._store(rtype, rid, resource, prior=prior, interaction=interaction,
                           client_id=True)

    def conditional_update(
        self, rtype: str, query: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> WriteOutcome:
        ensure_valid(resource, expected_type=rtype)
        match = find_one(self.pipeline, self.session, self.ctx, rtype, query,
                         "Conditional update", serialize=True)
        if match is None:
            given = resource.get("id")
            if isinstance(given, str):
                return self.update(rtype, given, resource, if_match=if_match, validate=False)
            rid = str(uuid.uuid4())
            return self._store(rtype, rid, resource, prior=None, interaction="create")
        rid = match.rid
        if resource.get("id") not in (None, rid):
            raise Unprocessable(
                f"Resource id {resource.get('id')!r} does not match the matched {rtype}/{rid}",
                code="invalid", expression=(f"{rtype}.id",),
            )
        return self.update(rtype, rid, {**resource, "id": rid}, if_match=if_match, validate=False)

    def delete(self, rtype: str, rid: str, *, if_match: int | None = None) -> WriteOutcome:
        prior = repository.get_current(self.session, rtype, rid, lock=True)
        try:
            # The type permission first (403 whether or not the record exists); a record the
            # caller may not see is then answered exactly like one that does not exist.
            self.pipeline.guard.authorize(self.session, self.ctx, "delete", rtype, stored=prior)
        except NotFound:
            prior = None
        if if_match is not None and (prior is None or prior.deleted
                                     or prior.version_id != if_match):
            current = "none" if prior is None or prior.deleted else str(prior.version_id)
            raise PreconditionFailed(
                f"If-Match version {if_match} does not match current version {current}")
        if prior is None:
            # R4 http.html#delete: deleting what does not exist is a success, not an error.
            return WriteOutcome(None, 200, [Issue(
                "not-found", f"{rtype}/{rid} does not exist: nothing deleted", "information")])
        if prior.deleted:
            gone = Issue("informational", "Already deleted", "information")
            return WriteOutcome(prior, 200, [gone])
        return self._store(rtype, rid, None, prior=prior, interaction="delete")

    def conditional_delete(self, rtype: str, query: str) -> WriteOutcome:
        match = find_one(self.pipeline, self.session, self.ctx, rtype, query,
                         "Conditional delete")
        if match is None:
            return WriteOutcome(None, 200, [Issue("not-found", "No match: nothing deleted",
                                                  "information")])
        return self.delete(rtype, match.rid)

    # -- the pipeline ---------------------------------------------------------------------

    def _store(
        self,
        rtype: str,
        rid: str,
        resource: dict[str, Any] | None,
        *,
        prior: StoredResource | None,
        interaction: str,
        client_id: bool = False,
        derived: bool = False,
    ) -> WriteOutcome:
        if not derived:
            self.pipeline.guard.authorize(
                self.session, self.ctx, interaction, rtype, resource=resource, stored=prior
            )
        change = Change(interaction, rtype, rid, resource, prior)
        self.pipeline.rules.apply(self.session, self.ctx, change)
        if change.refused:
            raise Unprocessable(issues=change.issues)

        now = instants.now_us()
        version = 1 if prior is None else prior.version_id + 1
        full = None if change.resource is None else _with_meta(change.resource, rid, version, now)
        content = None if full is None else canonical_json.dumps(full)
        if prior is None and content is not None:
            pk = self._insert(rtype, rid, content, now, client_id=client_id)
        else:
            assert prior is not None
            pk = prior.pk
            if not repository.bump_current(
                self.session, pk, prior.version_id, content=content, last_updated=now,
                deleted=content is None,
            ):
                raise PreconditionFailed(f"{rtype}/{rid} changed concurrently; re-read and retry")
        repository.append_version(
            self.session, res_pk=pk, rtype=rtype, rid=rid, version_id=version, last_updated=now,
            method=_history_method(interaction, client_id), content=content,
            request_id=self.ctx.request_id,
            actor_id=self.ctx.actor.id,
        )
        if full is None:
            delete_index(self.session, pk)
        else:
            replace_index(self.session, pk, rtype, index_values(rtype, full),
                          fresh=prior is None)
        stored = StoredResource(pk, rtype, rid, version, now, content is None, content, interaction)
        for callback in change.after_store:
            callback(self.session, stored)
        patients = patients_of(rtype, rid, change.resource or prior_resource(prior))
        # A patient created by this write cannot be under a break-the-glass grant yet.
        purpose = self.ctx.purpose_of_use if rtype == "Patient" and prior is None else \
            self.pipeline.guard.purpose_of_use(self.session, self.ctx, patients)
        self.pipeline.recorder.record(
            self.session, self.ctx,
            AccessEvent(interaction, rtype, rid, version,
                        201 if interaction == "create" else 200, patients,
                        # Writes under break-the-glass are marked like the reads it covers.
                        detail={"purpose_of_use": purpose}
                        if purpose != self.ctx.purpose_of_use else {}),
        )
        status = 201 if interaction == "create" else 200
        outcome = WriteOutcome(stored, status,
                               [i for i in change.issues if i.severity != "error"])
        for item in change.derived:
            written = self._store_derived(item)
            outcome.issues.extend(written.issues)
            outcome.derived.extend(
                [written.stored, *written.derived] if written.stored else written.derived)
        return outcome

    def _store_derived(self, item: Derived) -> WriteOutcome:
        """Store what a rule derived: validated, ruled and audited, not type-authorized."""
        rid = item.rid or str(uuid.uuid4())
        ensure_valid({**item.resource, "id": rid}, expected_type=item.rtype, expected_id=rid)
        prior = None if item.rid is None else repository.get_current(
            self.session, item.rtype, rid, lock=True)
        interaction = "update" if prior is not None and not prior.deleted else "create"
        return self._store(item.rtype, rid, {**item.resource, "id": rid}, prior=prior,
                           interaction=interaction, client_id=item.rid is not None,
                           derived=True)

    def create_derived(self, rtype: str, resource: dict[str, Any]) -> WriteOutcome:
        """A record an operation decided to write (the Provenance of a signature), like a
        rule's derived write: validated, ruled and audited, without the caller's type
        permission (a therapist signs a note but may not create Provenances at will)."""
        return self._store_derived(Derived(rtype, resource))

    def _insert(self, rtype: str, rid: str, content: str, now: int, *, client_id: bool) -> int:
        if not client_id:
            # A fresh UUID cannot collide: skip the savepoint round trips on the hot path.
            return repository.insert_resource(self.session, rtype, rid, content, now)
        try:
            with self.session.begin_nested():
                return repository.insert_resource(self.session, rtype, rid, content, now)
        except IntegrityError as exc:
            raise Conflict(f"{rtype}/{rid} was created concurrently; retry") from exc


def prior_resource(prior: StoredResource | None) -> dict[str, Any] | None:
    """The last stored form (a delete's event still names the patient it concerned)."""
    if prior is None or not prior.content:
        return None
    loaded = canonical_json.loads(prior.content)
    return loaded if isinstance(loaded, dict) else None


def _history_method(interaction: str, client_id: bool) -> str:
    # History shows how a version was written: "create" is a POST (server-assigned id),
    # "insert" a PUT that created the resource (new id, or again after a delete).
    if interaction == "create" and client_id:
        return "insert"
    return interaction


def _with_meta(resource: dict[str, Any], rid: str, version: int, now: int) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instants.instant(now)
    out = dict(resource)
    out["id"] = rid
    out["meta"] = meta
    return out
