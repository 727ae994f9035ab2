"""The softphone's page tells the agent of their cool-down, by keyboard alone, in zh-CN, against a
live warmline API (its workers on the real Mosquitto): a rest starts on the server
(agents.help.service.start_cooldown, as after an abusive or long call); the service publishes it
(agents.help.notices) and hands it to the phone's feed; the page's polite live region says it;
Alt+S ("say my state") includes the time left; axe-clean; then the page says the rest is over."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from agents.help import service
from core.db import Database, utcnow
from core.settings import Settings
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer, new_page, wait_phone_ready
from tests.e2e.test_softphone_ui import PhoneServer, said
from tests.utils.agents import make_agents

pytestmark = pytest.mark.e2e
REST_MIN = 0.2  # 12 s


def test_the_page_says_the_rest_starting_and_ending(
    browser: Browser, settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": []})
    with LiveServer(settings, db) as api, PhoneServer(api.url, locale="zh_CN", feed=True) as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            with db.session() as s:
                service.start_cooldown(s, "mei", "abusive", utcnow(), REST_MIN, call_ref="att-9")
            said(page, "冷静期（辱骂电话之后）")
            said(page, "之前不会为您分配来电。")
            page.keyboard.press("Alt+s")
            said(page, "冷静期还剩")
            assert_accessible(page)
            said(page, "冷静期结束，可以重新为您分配来电了。")
        finally:
            page.context.close()
