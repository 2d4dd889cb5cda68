"""Helpers for page tests: users with a password, signing in, the CSRF field of a page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from ehr.db import unit_of_work

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_user(app: Any, username: str, *roles: str, practitioner: str | None = None) -> None:
    with unit_of_work(app.state.engine, write=True) as session:
        app.state.auth.users.create(session, username=username, password=PASSWORD,
                                    roles=roles or ("physician",),
                                    display_name=username.title(), practitioner=practitioner)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)
