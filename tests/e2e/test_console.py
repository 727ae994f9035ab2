"""The console shell in a real Chromium: signed in by keyboard alone, role-aware, axe-clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.e2e.a11y import assert_accessible
from tests.utils.live_server import LiveServer

# Written against the English pages: an English browser, a user who made no choice.
pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]
PW = "correct horse battery"


@pytest.fixture
def users(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "root", Role.admin, PW, actor="test", display_name="Site Admin")
        service.create_user(s, "mei", Role.agent, PW, actor="test", display_name="Wang Mei")


def sign_in_by_keyboard(page: Page, server: LiveServer, name: str, password: str) -> None:
    page.goto(server.url + "/console")
    expect(page).to_have_url(f"{server.url}/login?next=/console")
    # The user-name field has focus on arrival; everything after is typed.
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def test_login_page_is_accessible(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/login")
    assert_accessible(page)


def test_wrong_password_is_announced(page: Page, live_server: LiveServer, users: None) -> None:
    sign_in_by_keyboard(page, live_server, "mei", "wrong password!")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("wrong user name or password")
    expect(page.get_by_label("User name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_agent_signs_in_by_keyboard_and_sees_only_agent_sections(
    page: Page, live_server: LiveServer, users: None
) -> None:
    sign_in_by_keyboard(page, live_server, "mei", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    expect(page.get_by_role("status")).to_have_text("Signed in as mei.")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="My day")).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    assert "Wang Mei" in page.get_by_role("banner").aria_snapshot()
    assert_accessible(page)


def test_admin_sees_system_health(page: Page, live_server: LiveServer, users: None) -> None:
    sign_in_by_keyboard(page, live_server, "root", PW)
    page.get_by_role("link", name="System").first.focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("table")
    expect(table).to_contain_text("Database")
    expect(table).to_contain_text("Event bus")
    assert_accessible(page)
    page.goto(live_server.url + "/console/users")
    expect(page.get_by_role("table")).to_contain_text("mei")
    assert_accessible(page)
