"""A ledger report as CSV, the same for the API and the web pages.

Cells a spreadsheet would run as a formula are prefixed with an apostrophe (names and
circumstances are typed by people); negative quantities ("-12.5000") stay numbers.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ehr.clinical.ledger.reports import Report

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA) and not _number(value):
        return "'" + value
    return "" if value is None else value


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def as_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(report.fields)
    for row in report.rows:
        writer.writerow([cell(row.get(f)) for f in report.fields])
    return buffer.getvalue()
