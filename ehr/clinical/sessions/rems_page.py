"""The printable REMS Patient Monitoring Form: one self-contained HTML page.

Every value that comes from the record is escaped; the page loads nothing (no scripts, no
external styles), so printing it cannot leak the record to a third party.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ehr.clinical.sessions.rems import DUE_EXTENSION, rems_questionnaire

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:48em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #444;padding:.3em .5em;
text-align:left;vertical-align:top}th{width:55%}.none{color:#777}
@media print{.noprint{display:none}}"""


def _answers(item: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for answer in item.get("answer") or []:
        for key, value in answer.items():
            if key.startswith("value"):
                if isinstance(value, bool):
                    out.append("Yes" if value else "No")
                else:
                    out.append(str(value))
    return out


def _by_link(items: list[dict[str, Any]], found: dict[str, dict[str, Any]]) -> None:
    for item in items:
        found[str(item.get("linkId"))] = item
        _by_link(item.get("item") or [], found)


def _rows(q_items: list[dict[str, Any]], answered: dict[str, dict[str, Any]],
          depth: int = 0) -> list[str]:
    rows: list[str] = []
    for q in q_items:
        label = escape(str(q.get("text", q.get("linkId", ""))))
        pad = f' style="padding-left:{1 + depth * 1.5}em"'
        if q.get("type") == "group":
            rows.append(f'<tr><th colspan="2"{pad}>{label}</th></tr>')
            rows += _rows(q.get("item") or [], answered, depth + 1)
            continue
        values = _answers(answered.get(str(q.get("linkId")), {}))
        cell = ", ".join(escape(v) for v in values) if values else \
            '<span class="none">not recorded</span>'
        rows.append(f"<tr><th{pad}>{label}</th><td>{cell}</td></tr>")
    return rows


def rems_page(response: dict[str, Any], *, patient_name: str, encounter: str) -> str:
    questionnaire = rems_questionnaire()
    answered: dict[str, dict[str, Any]] = {}
    _by_link(response.get("item") or [], answered)
    due = next((e.get("valueDate") for e in response.get("extension") or []
                if isinstance(e, dict) and e.get("url") == DUE_EXTENSION), None)
    title = escape(str(questionnaire.get("title", "REMS Patient Monitoring Form")))
    rows = "\n".join(_rows(questionnaire.get("item") or [], answered))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style></head><body>
<h1>{title}</h1>
<p>Patient: <strong>{escape(patient_name)}</strong><br>
Session: {escape(encounter)}<br>
Form status: {escape(str(response.get("status", "")))}<br>
Due by: {escape(str(due or "unknown"))}</p>
<table>
{rows}
</table>
<p class="noprint"><small>{escape(str(questionnaire.get("description", "")))}</small></p>
</body></html>
"""
