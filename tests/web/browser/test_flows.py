"""End-to-end flows in a real browser (issue 8 item 8)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from web.browser.conftest import screenshot
from web.signing_in import PASSWORD, make_user
from web.test_pages import on_team, patient


def sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_break_the_glass_outside_the_care_team(web_app: Any, tablet: Any) -> None:
    pid = patient(web_app, "Quillfeather", "MRN-BTG")
    make_user(web_app, "droutside", "physician", practitioner="Practitioner/droutside")
    sign_in(tablet, "droutside")
    tablet.wait_for_url("**/patients")
    assert "Quillfeather" not in tablet.content()
    screenshot(tablet, "break-glass", "1-list-without-patient")
    tablet.get_by_label("Medical record number").fill("MRN-BTG")
    tablet.get_by_label("Reason").fill("short")
    tablet.get_by_role("button", name="Open the record").click()
    assert tablet.get_by_text("at least 10 characters").is_visible()
    screenshot(tablet, "break-glass", "2-reason-refused")
    tablet.get_by_label("Reason").fill("Patient collapsed in the waiting room")
    tablet.get_by_role("button", name="Open the record").click()
    tablet.wait_for_url(f"**/patients/{pid}")
    assert tablet.get_by_role("heading", name="Ann Quillfeather").is_visible()
    screenshot(tablet, "break-glass", "3-chart-open")


def test_compliance_finds_access_and_exports_it(web_app: Any, tablet: Any) -> None:
    pid = patient(web_app, "Reviewed", "MRN-AUD")
    on_team(web_app, pid, "Practitioner/drseen")
    make_user(web_app, "drseen", "physician", practitioner="Practitioner/drseen")
    make_user(web_app, "auditor", "compliance")
    sign_in(tablet, "drseen")
    tablet.goto(f"/patients/{pid}")
    tablet.get_by_role("button", name="Sign out").click()
    tablet.wait_for_url("**/login")
    sign_in(tablet, "auditor")
    tablet.wait_for_url("**/compliance/audit")
    tablet.get_by_label("Patient id").fill(pid)
    tablet.get_by_label("User", exact=True).fill("drseen")
    tablet.get_by_role("button", name="Search").click()
    rows = tablet.locator("tbody tr")
    assert rows.count() >= 2
    assert "drseen" in rows.first.inner_text()
    screenshot(tablet, "compliance", "1-audit-search")
    with tablet.expect_download() as download_info:
        tablet.get_by_role("link", name="Export CSV").click()
    exported = download_info.value
    text = Path(exported.path()).read_text(encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(text)))
    assert records and all(pid in r["patients"] for r in records)
    assert any(r["actor"] == "drseen" for r in records)


def test_a_user_changes_their_own_password(web_app: Any, tablet: Any) -> None:
    make_user(web_app, "nurseann", "nurse")
    sign_in(tablet, "nurseann")
    tablet.wait_for_url("**/patients")
    tablet.get_by_role("link", name="Nurseann (nurse)").click()
    tablet.wait_for_url("**/account")
    new = "tablet passphrase 2026"
    tablet.get_by_label("Current password").fill("not the password")
    tablet.get_by_label("New password", exact=True).fill(new)
    tablet.get_by_label("The new password again").fill(new)
    tablet.get_by_role("button", name="Change password").click()
    assert tablet.get_by_text("That is not your current password.").is_visible()
    assert tablet.get_by_label("Current password").get_attribute("aria-invalid") == "true"
    screenshot(tablet, "account", "1-wrong-current-password")
    tablet.get_by_label("Current password").fill(PASSWORD)
    tablet.get_by_label("New password", exact=True).fill(new)
    tablet.get_by_label("The new password again").fill(new)
    tablet.get_by_role("button", name="Change password").click()
    tablet.wait_for_url("**/account?done=password")
    assert tablet.get_by_text("Password changed.").is_visible()
    screenshot(tablet, "account", "2-changed")
    tablet.get_by_role("button", name="Sign out").click()
    tablet.wait_for_url("**/login")
    tablet.get_by_label("User name").fill("nurseann")
    tablet.get_by_label("Password").fill(new)
    tablet.get_by_role("button", name="Sign in").click()
    tablet.wait_for_url("**/patients")
