"""The Reports page in Chromium: a supervisor reaches it by keyboard, chooses the period, group and
interval with the form, reads the table beside the chart (the chart named for screen readers), the
elder line without a speed target, the team table (per agent: calls, talk time, satisfaction, rests),
and downloads the CSV; axe-clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agents.help.service import start_cooldown
from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_agent_profiles_page import tab_to
from tests.e2e.test_console import sign_in_by_keyboard
from tests.unit.test_workforce_reports import seed
from tests.unit.test_wrapup import T0
from tests.utils.live_server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]  # reads the English texts
PW = "correct horse battery"


def test_a_supervisor_reads_and_downloads_a_report(page: Page, live_server: LiveServer, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "boss", Role.supervisor, PW, actor="test")
    seed(db)
    with db.session() as s:
        start_cooldown(s, "mei", "abusive", T0, 5)
    sign_in_by_keyboard(page, live_server, "boss", PW)
    tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports"))
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Reports")
    assert_accessible(page)
    # The period: the date fields take the dates; the rest by keyboard.
    page.locator("#report-from").fill("2024-11-04")
    page.locator("#report-to").fill("2024-11-04")
    tab_to(page, page.get_by_role("button", name="Show the report"))
    page.keyboard.press("Enter")
    table = page.locator("#report-table")
    expect(table).to_contain_text("community-hotline")
    row = table.locator("tbody tr").filter(has_text="community-hotline")
    expect(row).to_contain_text("50% (80%) below target")
    expect(table.locator("tbody tr").filter(has_text="elder-line")).to_contain_text("— (—)")
    expect(page.get_by_role("img", name="Service level and resolution per row")).to_be_visible()
    # The team table: per agent, calls, talk time, satisfaction and rests after hard calls.
    team = page.get_by_role("table", name="The team")
    expect(team.locator("thead")).to_contain_text("Rests (cool-downs)")
    mei = team.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="mei", exact=True))
    expect(mei.locator("td")).to_have_text(["6", "26 min", "4.0 (1)", "1"])
    expect(team.locator("tbody tr").filter(has_text="li")).to_contain_text("5.0 (1)")
    assert_accessible(page)
    with page.expect_download() as download:
        tab_to(page, page.locator("#report-csv"))
        page.keyboard.press("Enter")
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert body.startswith("group,name,period") and "community-hotline,2024-11-04,4,3,0.5" in body
