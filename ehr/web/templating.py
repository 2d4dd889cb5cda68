"""Jinja2 templates (autoescaped) and the filters pages share: times in the clinic's zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

_TEMPLATES = Path(__file__).parent / "templates"


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Templates:
    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.env = Environment(loader=FileSystemLoader(_TEMPLATES),
                               autoescape=select_autoescape(["html"]),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["local"] = self.local_time
        self.env.filters["local_date"] = self.local_date
        self.env.filters["micros"] = self.micros
        self.env.globals["timezone"] = timezone

    def local_time(self, value: Any) -> str:
        """A FHIR instant or dateTime shown in the clinic's zone; a bare date stays as is."""
        parsed = _parse(value)
        if parsed is None:
            return "" if value is None else str(value)
        if parsed.tzinfo is None:
            return str(value)
        return parsed.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def micros(self, value: Any) -> str:
        """A stored time (microseconds since the epoch, UTC) in the clinic's zone."""
        if not isinstance(value, int):
            return ""
        moment = datetime.fromtimestamp(value / 1_000_000, tz=self.zone)
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z")

    def local_date(self, value: Any) -> str:
        parsed = _parse(value)
        if parsed is None or parsed.tzinfo is None:
            return "" if value is None else str(value)[:10]
        return parsed.astimezone(self.zone).strftime("%Y-%m-%d")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={
            # Pages carry patient data: never cached by a browser or a proxy.
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "style-src 'self'; script-src 'self'; "
                                       "frame-ancestors 'none'; form-action 'self'",
            "Referrer-Policy": "same-origin",
        })
