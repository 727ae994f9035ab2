"""The transfer chooser of the softphone's page in Chromium, by keyboard alone, in Chinese (the
phone's default), axe-clean at every step: a call the service put through (FakeEngine, with the
service's headers), Alt+C opens the chooser (colleague / queue / outside number, keys 1 to 3),
Enter consults lin through the live warmline API; the page says each step as the service moves the
transfer, Alt+J joins, and once lin has the caller the phone opens no wrap-up.

The service's side (moving the legs) is played here by writing the transfer's state, as the call's
process would (tests/unit/test_transfer_fake_ari.py and tests/integration/test_transfer_lab.py run
the real thing)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from agents.routing import set_state
from agents.transfer.models import Transfer
from core.db import Database, utcnow
from core.settings import Settings
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer, new_page, wait_phone_ready
from tests.e2e.test_softphone_ui import PhoneServer, said
from tests.utils.agents import make_agents

pytestmark = pytest.mark.e2e

HEADERS = {"attempt": "att-42", "campaign": "w48", "phone": "138****8009", "field-name": "%E7%8E%8B"}


def the_transfer(db: Database) -> Transfer:
    with db.session() as s:
        row: Transfer | None = s.scalar(select(Transfer))
        assert row is not None
        s.expunge(row)
        return row


def move(db: Database, **values: object) -> None:
    """What the call's process does as the transfer goes on."""
    with db.session() as s:
        row = s.scalar(select(Transfer))
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)


def test_consult_and_join_from_the_chooser_by_keyboard(
    browser: Browser, settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"], "bo": ["census"]})
    with db.session() as s:
        set_state(s, "lin", "available", "ready", since=utcnow())
    with LiveServer(settings, db) as api, PhoneServer(api.url, locale="zh_CN") as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            cid = srv.far_end(lambda: srv.engine.ring("warmline", HEADERS))
            said(page, "来电", assertive=True)
            page.keyboard.press("F2")
            said(page, "已接通")

            page.keyboard.press("Alt+c")  # the chooser: colleague first, lin (available) chosen
            said(page, "转接：1 同事，2 队列，3 外部号码；选好后按回车。")
            said(page, "现在有空：lin。")
            expect(page.locator("#xfer-kinds input").first).to_be_focused()
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            expect(page.locator("#xfer-targets")).to_contain_text("lin")
            expect(page.locator('#xfer-modes input[value="attended"]')).to_be_checked()
            assert_accessible(page)
            page.keyboard.press("2")  # queues, by key
            expect(page.locator("#xfer-targets")).to_contain_text("welfare")
            page.keyboard.press("1")  # back to colleagues
            expect(page.locator('#xfer-targets input[value="lin"]')).to_be_checked()
            page.keyboard.press("Enter")
            said(page, "已请求转接给 lin。")
            row = the_transfer(db)
            assert (row.call_ref, row.from_agent, row.kind, row.target, row.mode, row.action) == (
                "att-42", "mei", "agent", "lin", "attended", "start",
            )  # fmt: skip

            move(db, state="consulting", action=None)
            said(page, "您正在与lin通话；来电者在等待。请选择接通转接或返回来电者。")
            expect(page.locator("#xfer-state")).to_contain_text("Alt+J")
            assert_accessible(page)
            page.keyboard.press("Alt+j")
            said(page, "正在把来电者转给lin。")
            assert the_transfer(db).action == "complete"

            move(db, state="completed", result="answered", to_agent="lin", action=None, ended_at=utcnow())
            srv.far_end(lambda: srv.engine.remote_hangup(cid))
            said(page, "来电者已转给lin；由对方做话后处理。您现在有空。")
            expect(page.locator("#wrapup")).to_be_hidden()
            expect(page.locator("#xfer-state")).to_be_hidden()
            assert_accessible(page)
            assert srv.wrapups == [], "lin wraps the call up, not mei"
        finally:
            page.context.close()


def test_escape_closes_the_chooser_and_nothing_is_asked(
    browser: Browser, settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    with LiveServer(settings, db) as api, PhoneServer(api.url, locale="zh_CN") as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            srv.far_end(lambda: srv.engine.ring("warmline", HEADERS))
            said(page, "来电", assertive=True)
            page.keyboard.press("F2")
            said(page, "已接通")
            page.keyboard.press("Alt+t")  # blind: chosen for "how"
            said(page, "现在没有同事有空。")
            expect(page.locator('#xfer-modes input[value="blind"]')).to_be_checked()
            page.keyboard.press("Escape")
            expect(page.locator("#xfer-form")).to_be_hidden()
            expect(page.locator("#call")).to_be_focused()
            with db.session() as s:
                assert s.scalar(select(Transfer)) is None
        finally:
            page.context.close()
