"""The campaigns console in Chromium: created, previewed and imported by keyboard, announced, axe-clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_console import sign_in_by_keyboard
from tests.unit.test_dialer_import import MESSY
from tests.utils.live_server import LiveServer

# Written against the English pages: an English browser, users who made no choice.
pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]
PW = "correct horse battery"

# Every text the live status region shows, in order (what a screen reader announces).
RECORD_STATUS = """
window.__said = [];
new MutationObserver(() => window.__said.push(document.getElementById('status').textContent))
  .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});
"""


@pytest.fixture
def manager(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mgr", Role.manager, PW, actor="test", display_name="Li Na")
        service.create_user(s, "sup", Role.supervisor, PW, actor="test")


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    sign_in_by_keyboard(page, server, name, PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")


def choose_file_by_keyboard(page: Page, label: str, path: Path) -> None:
    """Space on the focused field opens the file dialog, as for a person. Headless Chromium now and
    then drops the first request while Playwright starts intercepting dialogs: press again."""
    field = page.get_by_label(label)
    field.focus()
    expect(field).to_be_focused()
    for attempt in range(3):
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Space" if attempt != 1 else "Enter")
        except PlaywrightTimeoutError:
            continue
        chooser.value.set_files(str(path))
        return
    raise AssertionError(f"the {label} field opened no file dialog from the keyboard")


def test_manager_creates_previews_and_imports_by_keyboard(
    page: Page, live_server: LiveServer, manager: None, tmp_path: Path
) -> None:
    listing = tmp_path / "老人名单.csv"
    listing.write_bytes(MESSY)
    sign_in(page, live_server, "mgr")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    assert_accessible(page)

    # New campaign: typed and ticked by keyboard, sent with Enter.
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("welfare-w48")
    page.get_by_label("Elder-welfare campaign").focus()
    page.keyboard.press("Space")
    page.get_by_label("Description").focus()
    page.keyboard.type("每周关怀回访")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaign welfare-w48")
    expect(page.get_by_role("status")).to_contain_text("created as a draft")
    expect(page.get_by_role("table", name="Calling windows")).to_contain_text("09:00-11:30, 14:30-17:00")
    page.wait_for_load_state()  # campaigns.js (deferred) drives the preview and import below
    assert_accessible(page)

    # Choose the list, preview it.
    page.evaluate(RECORD_STATUS)
    choose_file_by_keyboard(page, "List file", listing)
    page.keyboard.press("Tab")  # do-not-call file
    page.keyboard.press("Tab")  # columns
    page.keyboard.press("Tab")  # preview
    expect(page.get_by_role("button", name="Preview")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(
        "Preview ready: header in row 3, phone numbers in column C"
    )
    expect(page.get_by_label("Phone number column")).to_have_value("C")
    expect(page.get_by_label("Name column")).to_have_value("B")
    expect(page.get_by_label("Columns (optional)")).to_have_value("phone=C,name=B")
    rows = page.get_by_role("table", name="First 5 rows (numbers masked)")
    expect(rows).to_contain_text("138****8000")
    assert "13800138000" not in page.content()
    assert_accessible(page)

    # Import: the upload's progress and the result are announced, focus lands on the report.
    page.get_by_role("button", name="Import").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Report")).to_be_focused()
    expect(page.get_by_role("status")).to_have_text(
        "Import finished: 8 accepted, 7 rejected, 1 skipped of 16 rows."
    )
    said = page.evaluate("window.__said")
    assert any(s.startswith("Uploading 老人名单.csv") for s in said), said
    assert any("Checking every row" in s for s in said), said
    expect(page.get_by_label("Upload")).to_have_attribute("value", "100")
    reasons = page.get_by_role("table", name="Rejected rows by reason")
    expect(reasons).to_contain_text("scientific_notation")
    expect(reasons).to_contain_text("not_allowed_country")
    assert_accessible(page)

    # The full report, reached by keyboard.
    page.get_by_role("link", name="Full report of import #1").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Import #1")
    first = page.get_by_role("table", name="First 7 rejected rows (numbers masked)")
    expect(first).to_contain_text("call 137****7000")
    expect(page.get_by_role("link", name="Download every rejected row (CSV, full values)")).to_be_visible()
    assert_accessible(page)


def test_bad_file_is_announced_and_nothing_imported(
    page: Page, live_server: LiveServer, manager: None, tmp_path: Path
) -> None:
    bad = tmp_path / "old.xls"
    bad.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 200)
    sign_in(page, live_server, "mgr")
    page.goto(live_server.url + "/console/campaigns")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("c1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaign c1")
    page.wait_for_load_state()  # campaigns.js (deferred) sends the import below
    choose_file_by_keyboard(page, "List file", bad)
    page.get_by_role("button", name="Import").focus()
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("old.xls: this is an Excel 97-2003 (.xls) workbook")
    expect(page.get_by_role("status")).to_contain_text("Error: old.xls")
    # Preview without a file says so and puts focus on the file field.
    page.goto(page.url)
    page.get_by_role("button", name="Preview").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("Choose a list file first.")
    expect(page.get_by_label("List file")).to_be_focused()
    assert_accessible(page)


def test_supervisor_sees_campaigns_without_import(page: Page, live_server: LiveServer, manager: None) -> None:
    sign_in(page, live_server, "sup")
    page.goto(live_server.url + "/console/campaigns")
    expect(page.get_by_role("heading", name="New campaign")).to_have_count(0)
    assert_accessible(page)
