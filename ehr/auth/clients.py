"""System clients (SMART Backend Services): a public JWKS and the scopes they may be granted."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from ehr.auth.clock import Clock, system_clock, to_micros
from ehr.auth.scopes import InvalidScope, ScopeSet
from ehr.auth.tables import ClientRow
from ehr.errors import BadRequest, Conflict, NotFound

# Client assertion algorithms SMART Backend Services requires servers to support.
CLIENT_ALGORITHMS = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    jwks: dict[str, Any]
    scopes: ScopeSet
    active: bool

    def key_for(self, kid: str) -> dict[str, Any] | None:
        for key in self.jwks.get("keys", []):
            if key.get("kid") == kid:
                return dict(key)
        return None


def parse_jwks(text: str) -> dict[str, Any]:
    """A public JWK Set: every key with a kid, RSA or EC, and no private members."""
    try:
        jwks = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"JWKS is not JSON: {exc}") from exc
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise BadRequest("JWKS must be an object with a non-empty 'keys' array")
    kids: set[str] = set()
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise BadRequest("every JWKS key must be an RSA or EC JWK")
        if _PRIVATE_MEMBERS & key.keys():
            raise BadRequest("JWKS must hold public keys only (private members found)")
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            raise BadRequest("every JWKS key needs a 'kid'")
        if kid in kids:
            raise BadRequest(f"duplicate kid {kid!r} in JWKS")
        kids.add(kid)
    return {"keys": keys}


def parse_client_scopes(text: str) -> ScopeSet:
    try:
        scopes = ScopeSet.parse(text)
    except InvalidScope as exc:
        raise BadRequest(str(exc)) from exc
    if not scopes:
        raise BadRequest("a client needs at least one system/ scope")
    if any(s.context != "system" for s in scopes.scopes):
        raise BadRequest("system clients may only hold system/ scopes")
    return scopes


def _client(row: ClientRow) -> Client:
    return Client(row.client_id, row.name, json.loads(row.jwks), ScopeSet.parse(row.scopes),
                  row.active)


class Clients:
    """The client registry; methods flush, the caller commits."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    def create(self, session: Session, *, client_id: str, jwks: str, scopes: str,
               name: str = "") -> Client:
        if not _CLIENT_ID.match(client_id):
            raise BadRequest("client id must be 1-128 characters: letters, digits, . _ : @ / -")
        parsed_jwks = parse_jwks(jwks)
        parsed_scopes = parse_client_scopes(scopes)
        if self._row(session, client_id) is not None:
            raise Conflict(f"client {client_id!r} already exists")
        now = to_micros(self.clock())
        row = ClientRow(client_id=client_id, name=(name or client_id)[:200],
                        jwks=json.dumps(parsed_jwks, separators=(",", ":")),
                        scopes=str(parsed_scopes), active=True, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        return _client(row)

    def get(self, session: Session, client_id: str) -> Client | None:
        row = self._row(session, client_id)
        return _client(row) if row is not None else None

    def list(self, session: Session) -> list[Client]:
        return [_client(r) for r in session.exec(select(ClientRow).order_by(ClientRow.client_id))]

    def set_active(self, session: Session, client_id: str, active: bool) -> Client:
        row = self._row(session, client_id)
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        row.active = active
        row.updated_at = to_micros(self.clock())
        session.add(row)
        session.flush()
        return _client(row)

    @staticmethod
    def _row(session: Session, client_id: str) -> ClientRow | None:
        return session.exec(select(ClientRow).where(ClientRow.client_id == client_id)).first()
