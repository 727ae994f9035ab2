"""The practice-call key (F3) on the softphone's page, by keyboard alone, in zh-CN, against a live
warmline API: each press asks the server (``POST /api/agents/me/practice``) for a practice call with
the next of its scenarios, and the page says which and what to do (a second while the first rings is
refused, and said); the server rings only the agent's
own phone into the practice dialplan (the ARI client here records the originate; the ringing and the
scenario on a real phone are tests/integration/test_practice_lab.py). F1's key list names F3; axe-clean.
During a call the key refuses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from agents.help import api as help_api
from core.db import Database
from core.settings import Settings
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer, new_page, wait_phone_ready
from tests.e2e.test_softphone_ui import PhoneServer, said
from tests.utils.agents import endpoint_of, make_agents

pytestmark = pytest.mark.e2e


def wait_until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit  # a safety net, not what the test measures
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


class RecordingAri:
    """An ARI client that accepts every originate and remembers it."""

    def __init__(self) -> None:
        self.originated: list[dict[str, Any]] = []

    async def originate(self, endpoint: str, **kw: Any) -> dict[str, Any]:
        self.originated.append({"endpoint": endpoint, **kw})
        return {"id": kw.get("channel_id")}


def test_f3_starts_a_practice_call_with_the_next_scenario(
    browser: Browser, settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": []})
    ari = RecordingAri()

    async def aris() -> AsyncIterator[list[Any]]:
        yield [ari]

    with (
        LiveServer(settings, db, overrides={help_api.ari_clients: aris}) as api,
        PhoneServer(api.url, locale="zh_CN") as srv,
    ):
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            page.keyboard.press("F3")
            said(page, "练习通话：愤怒的来电者")
            said(page, "您的电话正在响铃：接听即开始练习通话。通话中没有真实市民。")
            page.keyboard.press("F3")  # while it rings, the server refuses a second one
            expect(page.locator("#say-assertive")).to_contain_text("无法开始练习通话")
            page.keyboard.press("F1")
            expect(page.locator("body")).to_contain_text("练习通话：您的话机会响起模拟来电")
            assert_accessible(page)
            page.keyboard.press("Escape")
            srv.far_end(lambda: srv.engine.ring("warmline", {"attempt": "att-1"}))
            page.keyboard.press("F2")  # answer
            wait_until(lambda: any(c.status == "connected" for c in srv.phone.calls.values()))
            page.keyboard.press("F3")
            said(page, "请先结束当前通话，再开始练习通话。", assertive=True)
        finally:
            page.context.close()
    assert [o["endpoint"] for o in ari.originated] == [f"{endpoint_of(db, 'mei')}"], ari.originated
    assert {o["context"] for o in ari.originated} == {"warmline-practice"}
