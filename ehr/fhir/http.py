"""Framework-independent request and response types for the FHIR router."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FHIR_JSON = "application/fhir+json; charset=utf-8"
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "text/json")


@dataclass
class FhirRequest:
    method: str
    path: str  # below the FHIR base, without leading slash: "Patient/1/_history"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def prefer(self, key: str) -> str | None:
        raw = self.header("prefer") or ""
        for part in raw.replace(";", ",").split(","):
            k, _, v = part.strip().partition("=")
            if k.strip().lower() == key:
                return v.strip().strip('"').lower() or "true"
        return None


@dataclass
class FhirResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = FHIR_JSON


def is_json_media_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media in _JSON_TYPES


def accepts_json(accept: str | None, fmt: str | None) -> bool:
    if fmt:
        return fmt.lower() in ("json", *(t for t in _JSON_TYPES))
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", "", *_JSON_TYPES):
            return True
    return False
