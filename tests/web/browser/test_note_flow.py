"""A therapist writes an integration note, signs it with the password, adds an addendum and
signs that too, in a real browser (issue 8 item 8)."""

from __future__ import annotations

from typing import Any

from web.browser.conftest import screenshot
from web.browser.test_flows import sign_in
from web.signing_in import PASSWORD, make_user
from web.test_pages import on_team, patient

FLOW = "therapist-note"


def test_therapist_writes_signs_and_amends_a_note(web_app: Any, tablet: Any) -> None:
    pid = patient(web_app, "Larkspur", "MRN-NOTE")
    on_team(web_app, pid, "Practitioner/tnotes")
    make_user(web_app, "tnotes", "therapist", practitioner="Practitioner/tnotes")
    sign_in(tablet, "tnotes")
    tablet.wait_for_url("**/patients")
    tablet.get_by_role("link", name="Ann Larkspur").click()
    tablet.wait_for_url(f"**/patients/{pid}")
    screenshot(tablet, FLOW, "1-chart")

    tablet.get_by_role("link", name="New integration note").click()
    tablet.get_by_label("Note", exact=True).fill(
        "Integration session 1. Patient described the dosing session as calm and reflective.\n"
        "Plan: journaling daily; next integration session in one week.")
    screenshot(tablet, FLOW, "2-writing")
    tablet.get_by_role("button", name="Save draft").click()
    tablet.wait_for_url("**/notes/*?done=created")
    assert tablet.locator("#note-state").inner_text() == "Draft"

    tablet.get_by_label("Your password (signs the note)").fill("wrong password here")
    tablet.get_by_role("button", name="Sign note").click()
    assert tablet.locator("#password-error").is_visible()
    screenshot(tablet, FLOW, "3-wrong-password")
    tablet.get_by_label("Your password (signs the note)").fill(PASSWORD)
    tablet.get_by_role("button", name="Sign note").click()
    tablet.wait_for_url("**/notes/*?done=signed")
    note_url = tablet.url.split("?")[0]
    assert tablet.locator("#note-state").inner_text() == "Signed"
    assert "meaning: authored" in tablet.locator(".signatures").inner_text()
    screenshot(tablet, FLOW, "4-signed")

    tablet.get_by_role("link", name="Add addendum").click()
    tablet.get_by_label("Addendum", exact=True).fill(
        "Addendum: patient phoned the next day; sleep improved.")
    tablet.get_by_role("button", name="Save draft").click()
    tablet.wait_for_url("**/notes/*?done=created")
    tablet.get_by_label("Your password (signs the note)").fill(PASSWORD)
    tablet.get_by_role("button", name="Sign note").click()
    tablet.wait_for_url("**/notes/*?done=signed*")
    assert tablet.url.split("?")[0] == note_url
    addendum = tablet.locator(".addendum")
    assert "sleep improved" in addendum.inner_text()
    assert "meaning: authored" in addendum.inner_text()
    screenshot(tablet, FLOW, "5-addendum-signed")

    tablet.goto("/notes")
    assert tablet.get_by_role("heading", name="Recently signed").is_visible()
    screenshot(tablet, FLOW, "6-my-notes")
