"""The supervisor's Agents page in Chromium, by keyboard alone: find it in the menu, open an
agent's form from the table, a wrong value is said in an alert with the field marked and focused,
a good one is saved without leaving the page and said in the live region; in Chinese (the
supervisor's browser; the page script's messages from the served catalogue); axe-clean throughout."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from agents import profiles
from agents.service import ensure_sip_account
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_console import sign_in_by_keyboard
from tests.utils.live_server import LiveServer

pytestmark = pytest.mark.e2e
PW = "correct horse battery"
SAVED = "已保存。mei (王梅)：技能 welfare，vaccination；线路 12345；语言 zh-CN，yue；每天 3小时30分。"


@pytest.fixture
def people(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "boss", Role.supervisor, PW, actor="test", display_name="Zhou Min")
        for name, display in (("mei", "王梅"), ("lin", None)):
            user = service.create_user(s, name, Role.agent, PW, actor="test", display_name=display)
            ensure_sip_account(s, user, actor="test")
    with db.session() as s:
        profiles.update_profile(s, "lin", actor="test", skills=["welfare"], daily_hours=6)


def tab_to(page: Page, target: Locator, most: int = 60) -> None:
    """Press Tab until ``target`` has focus, as a keyboard user would."""
    for _ in range(most):
        if target.evaluate("node => node === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def retype(page: Page, text: str) -> None:
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_supervisor_edits_a_profile_by_keyboard(
    page: Page, live_server: LiveServer, people: None, db: Database
) -> None:
    sign_in_by_keyboard(page, live_server, "boss", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("首页")
    tab_to(page, page.get_by_role("navigation", name="主导航").get_by_role("link", name="坐席"))
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("坐席资料")
    table = page.get_by_role("table", name="坐席 2 名")
    expect(table.locator("#agent-lin")).to_contain_text("welfare")
    expect(table.locator("#agent-lin [lang=en]")).to_have_text("welfare")  # a code, read in English
    expect(table.locator("#agent-lin")).to_contain_text("6小时")
    assert_accessible(page)

    tab_to(page, page.get_by_role("link", name="编辑 mei"))
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name="编辑 mei 的资料")
    expect(heading).to_be_focused()
    page.keyboard.press("Tab")
    skills = page.get_by_role("textbox", name="技能")
    expect(skills).to_be_focused()
    expect(skills).to_have_accessible_description("用逗号分隔，例如 welfare, vaccination。")
    page.keyboard.type("welfare，vaccination")
    page.keyboard.press("Tab")
    page.keyboard.type("12345")
    page.keyboard.press("Tab")
    page.keyboard.type("zh-cn, yue")
    page.keyboard.press("Tab")
    hours = page.get_by_role("spinbutton", name="每日目标小时数")
    expect(hours).to_be_focused()
    retype(page, "30")
    page.evaluate("window.__samePage = true")
    page.keyboard.press("Enter")

    alert = page.locator("#profile-error")
    expect(alert).to_have_text("每日目标小时数：30 超出范围：须大于 0，最多 24 小时。没有保存任何内容。")
    expect(hours).to_be_focused()
    expect(hours).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)

    retype(page, "3.5")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(SAVED)
    expect(alert).to_be_hidden()
    expect(hours).not_to_have_attribute("aria-invalid", "true")
    expect(hours).to_be_focused()
    row = table.locator("#agent-mei")
    expect(row).to_contain_text("welfare，vaccination")
    expect(row).to_contain_text("zh-CN，yue")
    expect(row).to_contain_text("3小时30分")
    assert page.evaluate("window.__samePage") is True, "saved without leaving the page"
    assert_accessible(page)

    level = page.get_by_role("combobox", name="级别")
    tab_to(page, level)
    expect(level).to_have_accessible_description(
        "见习、带教或正式坐席：要求级别的来电只分给达到该级别的坐席。"
    )
    level.select_option("trainee")
    tab_to(page, page.get_by_role("button", name="保存"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("；级别：见习")
    expect(row.locator('[data-field="level"]')).to_have_text("见习")
    assert_accessible(page)

    with db.session() as s:
        saved = profiles.get_profile(s, "mei")
        assert (saved.skills, saved.lines, saved.languages, saved.daily_target_minutes, saved.level) == (
            ["welfare", "vaccination"], ["12345"], ["zh-CN", "yue"], 210, "trainee",
        )  # fmt: skip
        who = s.scalars(
            select(AuditEntry.actor).where(
                AuditEntry.action == "agent_profile.update", AuditEntry.target == "mei"
            )
        )
        assert list(who) == ["boss", "boss"]
