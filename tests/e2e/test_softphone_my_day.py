"""The softphone's *My day* (Alt+W) against a live warmline API, in zh-CN (the phone's default): the
agent hears today's worked time, calls and talk and how far the 4-hour day is, and reads the same as
facts with a progress bar; axe-clean. The ledger is seeded relative to the server's clock, and only
what does not depend on the hour of the day (night hours do) is checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect

from agents.states import record_state
from core.db import Database, utcnow
from core.messages import AgentState
from core.settings import Settings
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer, new_page, wait_phone_ready
from tests.e2e.test_softphone_ui import PhoneServer, said
from tests.utils.agents import make_agents

pytestmark = pytest.mark.e2e


def test_alt_w_says_and_shows_my_day(browser: Browser, settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": []})
    now = utcnow()
    with db.session() as s:
        for ago, state in ((180, "available"), (120, "on_call"), (110, "available")):
            record_state(s, AgentState(agent="mei", state=state, since=now - timedelta(minutes=ago)))
    with LiveServer(settings, db) as api, PhoneServer(api.url, locale="zh_CN") as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            expect(page.locator("#my-day")).to_be_hidden()
            page.keyboard.press("Alt+w")
            said(page, "今天已工作3小时")
            said(page, "接打1通电话，通话10分钟。距每天4小时的目标还差1小时。")
            facts = page.locator("#my-day-facts")
            expect(facts).to_contain_text("已工作3小时")
            expect(facts).to_contain_text("通话数1")
            expect(facts).to_contain_text("3小时/4小时（75%）")
            expect(facts).to_contain_text("本班休息已用0分钟，共30分钟")
            said(page, "休息已用0分钟，共30分钟。")
            # 3 of 4 hours, and whatever seconds passed since the ledger was seeded (0.751 after
            # 15 s on a loaded machine): the bar, like the sentences, is read at the server's now.
            progress = float(page.locator("#day-progress").get_attribute("value") or "nan")
            assert 0.75 <= progress < 0.76, progress
            assert_accessible(page)
        finally:
            page.context.close()
