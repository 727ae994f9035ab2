"""The Shifts page in Chromium, by keyboard alone: an agent picks an open hour of a line's week with a
button in the table (said in the live region), drops it again; a supervisor sees who works each hour
and the gaps, publishes the week, and the agent can no longer drop (said in an alert). axe-clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_agent_profiles_page import retype, tab_to
from tests.e2e.test_console import sign_in_by_keyboard
from tests.unit.test_workforce_shifts import WEEK, seed
from tests.utils.live_server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]  # reads the English texts
PW = "correct horse battery"
MON_9 = "hour-2030030409"


@pytest.fixture
def people(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PW, actor="test")
        service.create_user(s, "boss", Role.supervisor, PW, actor="test")
    seed(db)


def show_week(page: Page) -> None:
    tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Shifts"))
    page.keyboard.press("Enter")
    tab_to(page, page.locator("#shift-week"))
    retype(page, WEEK)
    page.keyboard.press("Enter")
    expect(page.locator("#shifts-table caption")).to_contain_text("community-hotline, week 2030-W10")


def test_an_agent_picks_and_a_supervisor_publishes_by_keyboard(
    page: Page, live_server: LiveServer, people: None
) -> None:
    sign_in_by_keyboard(page, live_server, "mei", PW)
    show_week(page)
    row = page.locator(f"#{MON_9}")
    expect(row).to_contain_text("4")
    assert_accessible(page)
    tab_to(page, row.get_by_role("button", name="Pick Monday"))
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("You work Monday")
    expect(page.locator(f"#{MON_9} td").nth(2)).to_have_text("3")  # open places left
    tab_to(page, page.locator(f"#{MON_9}").get_by_role("button", name="Drop Monday"))
    assert_accessible(page)

    page.context.clear_cookies()
    sign_in_by_keyboard(page, live_server, "boss", PW)
    show_week(page)
    expect(page.locator(f"#{MON_9}")).to_contain_text("mei")
    tab_to(page, page.get_by_role("button", name="Publish week 2030-W10"))
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("published; 4 open agent-hours")
    expect(page.locator("#shift-published")).to_contain_text("boss")
    assert_accessible(page)

    page.context.clear_cookies()
    sign_in_by_keyboard(page, live_server, "mei", PW)
    show_week(page)
    tab_to(page, page.locator(f"#{MON_9}").get_by_role("button", name="Drop Monday"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("ask a supervisor")
    assert_accessible(page)
