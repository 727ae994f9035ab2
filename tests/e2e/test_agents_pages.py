"""My day (agent) and the wallboard (supervisor) in Chromium, in Chinese (the agents' browsers and
everyone's default): live, announced, axe-clean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from agents.states import record_state
from core.auth import service
from core.auth.models import Role
from core.db import Database, utcnow
from core.messages import AgentState
from core.settings import Settings
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_console import sign_in_by_keyboard
from tests.utils.live_server import LiveServer

pytestmark = pytest.mark.e2e
PW = "correct horse battery"


@pytest.fixture
def people(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PW, actor="test", display_name="Wang Mei")
        service.create_user(s, "boss", Role.supervisor, PW, actor="test")


def test_my_day_says_the_hours(
    page: Page,
    live_server: LiveServer,
    people: None,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Today" is the centre's calendar day: run at 00:30 there, 95 minutes ago was yesterday. So
    # the page's clock is fixed at a Wednesday noon in the centre's zone, whatever the real time.
    now = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo(settings.timezone)).astimezone(UTC)
    monkeypatch.setattr("warmline.console.agents.utcnow", lambda: now)
    with db.session() as s:
        record_state(s, AgentState(agent="mei", state="available", since=now - timedelta(minutes=95)))
    sign_in_by_keyboard(page, live_server, "mei", PW)
    page.get_by_role("link", name="我的今天").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("status")).to_have_text("今天已工作1小时35分，离每天4小时的目标还差2小时25分")
    expect(page.get_by_role("table")).to_contain_text("在线")
    # The state's time on the centre's clock, not UTC.
    since = (now - timedelta(minutes=95)).astimezone(ZoneInfo(settings.timezone)).strftime("%H:%M")
    expect(page.get_by_role("main")).to_contain_text(f"当前状态：空闲（自 {since} 起）。")
    assert_accessible(page)


def test_wallboard_updates_and_announces(
    page: Page, live_server: LiveServer, people: None, db: Database
) -> None:
    now = utcnow()
    with db.session() as s:
        record_state(s, AgentState(agent="mei", state="available", since=now - timedelta(minutes=95)))
        record_state(
            s, AgentState(agent="mei", state="break", reason="rest", since=now - timedelta(minutes=40))
        )
        record_state(s, AgentState(agent="mei", state="available", since=now - timedelta(minutes=30)))
    sign_in_by_keyboard(page, live_server, "boss", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("首页")
    page.goto(live_server.url + "/console/wallboard")
    table = page.get_by_role("table", name="坐席")
    # The table is drawn by the page's first poll; a change is announced from the second on.
    expect(page.get_by_role("status")).to_have_text("已显示 1 名坐席。")
    expect(table).to_contain_text("Wang Mei")
    expect(table).to_contain_text("空闲")
    expect(table).to_contain_text("0分钟")  # talking today: none yet
    expect(table).to_contain_text("已用10分钟，共30分钟")  # breaks this shift, of the allowance
    assert_accessible(page)
    with db.session() as s:
        record_state(s, AgentState(agent="mei", state="on_call", since=utcnow()))
    expect(page.get_by_role("status")).to_have_text("Wang Mei 现在通话中。")
    expect(table).to_contain_text("通话中")


def test_wallboard_help_panel_alerts_and_acts_by_keyboard(
    page: Page, live_server: LiveServer, people: None, db: Database
) -> None:
    from sqlalchemy import select

    from agents.help import service as help_service
    from agents.help.models import SupervisorAction
    from agents.service import ensure_sip_account
    from core.auth.models import User

    sign_in_by_keyboard(page, live_server, "boss", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("首页")
    page.goto(live_server.url + "/console/wallboard")
    expect(page.get_by_role("heading", name="艰难通话求助")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("已显示 1 名坐席。")
    with db.session() as s:
        mei = s.scalar(select(User).where(User.name == "mei"))
        assert mei is not None
        ensure_sip_account(s, mei, actor="test")
        help_service.request_help(s, "mei", "att-77", utcnow())
    # Announced assertively the moment it comes (a live region, not only a new row).
    expect(page.locator("#help-alert")).to_have_text("mei 请求帮助。")
    requests = page.get_by_role("list", name="正在求助的坐席")
    expect(requests).to_contain_text("mei 自")
    assert_accessible(page)
    page.get_by_label("您的电话（端点），例如 PJSIP/sue").fill("PJSIP/boss-desk")
    page.get_by_label("您的电话（端点），例如 PJSIP/sue").press("Tab")
    requests.get_by_role("listitem").first.focus()
    page.keyboard.press("w")
    expect(page.locator("#help-alert")).not_to_have_text("mei 请求帮助。")
    with db.session() as s:
        action = s.scalar(select(SupervisorAction))
        assert action is not None
        assert (action.supervisor, action.action, action.endpoint) == ("boss", "whisper", "PJSIP/boss-desk")
