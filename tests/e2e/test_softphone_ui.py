"""The softphone's local page in Chromium, driven by keyboard alone, against a simulated engine.

The phone logic is the real `Softphone`; only the SIP engine is the `FakeEngine` (the real engine
against the lab is tested in tests/integration/test_softphone_lab.py). Every step presses keys
and reads what a screen reader would be told: the live regions' text. No key is pressed before the
page says it is ready (<html data-ready="true">, set once its key map and first view are in), and
every wait is on what the page shows, never on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import select

from core.db import Database, utcnow
from core.i18n import set_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.ledger import close
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, PreviewSkip
from dialer.outcomes import CallFacts
from softphone.account import SipAccountSettings
from softphone.fake import FakeEngine
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from softphone.server_pops import ScreenPopFeed
from softphone.ui.app import create_ui
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import SERVER_START_S, LiveServer, new_page, wait_phone_ready
from tests.utils import free_port
from tests.utils.agents import AGENT_PASSWORD, make_agents

pytestmark = pytest.mark.e2e


class PhoneServer:
    def __init__(self, server_url: str | None = None, locale: str = "en", *, feed: bool = False) -> None:
        self.engine = FakeEngine()
        self.publisher = NullPublisher()
        self.server_url = server_url  # a live warmline API the phone signs in to, when given
        self.feed = feed  # follow the server's screen pops and notices (softphone.server_pops)
        self.wrapups: list[dict[str, Any]] = []
        self.phone = Softphone(self.engine, AgentStatus("mei", self.publisher), on_wrapup=self._keep)
        self.app = create_ui(self.phone, token="test-token")
        self.port = free_port()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.follower: asyncio.Task[None] | None = None
        self.app.router.on_startup.append(self._startup)
        self.app.router.on_shutdown.append(self._shutdown)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        # The phone speaks the language of its process (zh-CN unless told): these tests read the
        # English words unless they ask for Chinese.
        self.thread = threading.Thread(target=self._run, args=(locale,), daemon=True)

    def _run(self, locale: str) -> None:
        set_locale(locale)
        self.server.run()

    async def _keep(self, record: dict[str, Any]) -> None:
        self.wrapups.append(record)

    async def _startup(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.server_url is not None:
            server = ServerClient(self.server_url)
            await server.login("mei", AGENT_PASSWORD)
            self.phone.server = self.phone.placed.server = server
            if self.feed:
                self.follower = asyncio.create_task(ScreenPopFeed(server, self.phone).run())
        await self.phone.start(SipAccountSettings("mei", "pw", "sip:127.0.0.1:5060"))

    async def _shutdown(self) -> None:
        """As the phone's runner stops: its poll cancelled and its connection closed (left open,
        it held the API's stop for the rest of its 25 s)."""
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.follower
        if isinstance(self.phone.server, ServerClient):
            await self.phone.server.aclose()

    def far_end(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (e.g. engine.ring) on the phone's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self._call(fn), self.loop).result(60)

    @staticmethod
    async def _call(fn: Callable[[], Any]) -> Any:
        return fn()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?t=test-token"

    def __enter__(self) -> PhoneServer:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started:
            assert time.monotonic() < deadline, "UI did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def phone_server() -> Iterator[PhoneServer]:
    with PhoneServer() as server:
        yield server


@pytest.fixture
def phone_page(browser: Browser, phone_server: PhoneServer) -> Iterator[Page]:
    page = new_page(browser)
    page.goto(phone_server.url)
    wait_phone_ready(page)  # keys pressed before the key map is loaded would be lost
    expect(page.locator("#registration")).to_have_text("phone connected")
    said(page, "Phone page ready")
    yield page
    page.context.close()


def said(page: Page, text: str, assertive: bool = False) -> None:
    region = page.locator("#say-assertive" if assertive else "#say-polite")
    try:
        expect(region).to_contain_text(text)
    except AssertionError as missing:
        # what the phone said instead, in the other region too (a refusal or a server timeout)
        other = page.locator("#say-polite" if assertive else "#say-assertive").text_content()
        raise AssertionError(f"{missing}\nthe other region said: {other!r}") from None


def test_whole_call_by_keyboard_alone(phone_page: Page, phone_server: PhoneServer) -> None:
    page, srv = phone_page, phone_server
    expect(page.locator("#agent-state")).to_have_text("mei: available")

    # a call arrives with a screen pop: masked phone, campaign, script
    headers = {
        "campaign": "flu-2026",
        "script": "Hello%2C this is the community centre.",
        "phone": "13800138000",
        "field-name": "%E7%8E%8B%E5%A5%B6%E5%A5%B6",
    }
    cid = srv.far_end(lambda: srv.engine.ring("13800138000", headers))
    said(page, "Incoming call from 138****8000", assertive=True)
    said(page, "campaign flu-2026", assertive=True)
    assert "13800138000" not in page.content()
    expect(page.locator("#pop-fields")).to_contain_text("138****8000")
    expect(page.locator("#pop-fields")).to_contain_text("王奶奶")
    expect(page.locator("#pop-script")).to_have_text("Hello, this is the community centre.")

    page.keyboard.press("F2")  # answer
    said(page, "Connected to 138****8000")
    expect(page.locator("#agent-state")).to_have_text("mei: on a call")

    page.keyboard.press("Alt+p")  # read the script
    expect(page.locator("#pop")).to_be_focused()

    srv.far_end(lambda: srv.engine.remote_dtmf(cid, "5"))
    said(page, "The other side pressed 5")
    page.keyboard.press("Alt+p")
    page.keyboard.press("1")  # DTMF from the call panel
    deadline = time.monotonic() + 30
    while srv.engine.sent_dtmf != ["1"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.engine.sent_dtmf == ["1"]

    page.keyboard.press("F7")  # hold
    said(page, "138****8000 is on hold")
    page.keyboard.press("F7")  # resume
    said(page, "Call resumed")
    page.keyboard.press("F8")
    said(page, "Microphone muted")
    page.keyboard.press("F8")
    said(page, "Microphone on")
    page.keyboard.press("Alt+q")
    said(page, "Line quality good")

    page.keyboard.press("F4")  # the caller has been helped: hang up
    said(page, "Wrap-up. Choose the result with keys 1 to 9")
    expect(page.locator("#agent-state")).to_have_text("mei: in wrap-up")
    page.keyboard.press("3")  # callback requested
    expect(page.locator("#disposition-3")).to_be_checked()
    expect(page.locator("#callback-at")).to_be_visible()
    page.keyboard.press("Tab")  # to the callback field
    page.keyboard.type("2026-12-01T10:30")
    page.locator("#callback-at").fill(
        "2026-12-01T10:30"
    )  # datetime-local typing varies; value is what counts
    page.keyboard.press("Enter")
    said(page, "Saved: Callback requested. Callback on 2026-12-01 at 10:30. You are available for calls.")
    expect(page.locator("#agent-state")).to_have_text("mei: available")
    states = [m.state for m in srv.publisher.sent if hasattr(m, "state")]
    assert states == ["available", "on_call", "wrap_up", "available"]


def test_blind_transfer_in_three_keystrokes(phone_page: Page, phone_server: PhoneServer) -> None:
    page, srv = phone_page, phone_server
    cid = srv.far_end(lambda: srv.engine.ring("13800138001"))
    said(page, "Incoming call", assertive=True)
    page.keyboard.press("Alt+a")
    said(page, "Connected to 138****8001")
    page.keyboard.press("Alt+t")  # 1
    expect(page.locator("#target")).to_be_focused()
    page.keyboard.type("1002")  # 2: the target
    page.keyboard.press("Enter")  # 3
    said(page, "Transfer to 1002 succeeded")
    assert srv.engine.transfers == [(cid, "1002")]
    said(page, "Caller handed over to 1002")


def test_attended_transfer_and_break(phone_page: Page, phone_server: PhoneServer) -> None:
    page, srv = phone_page, phone_server
    srv.far_end(lambda: srv.engine.ring("13800138002"))
    said(page, "Incoming call", assertive=True)
    page.keyboard.press("F2")
    said(page, "Connected to 138****8002")
    page.keyboard.press("Alt+c")
    page.keyboard.type("1003")
    page.keyboard.press("Enter")
    said(page, "Connected to colleague 1003")
    page.keyboard.press("Alt+j")
    said(page, "Handing the caller over to 1003")
    said(page, "Caller handed over to 1003")
    said(page, "Wrap-up")
    page.keyboard.press("5")  # wrap-up: voicemail or no answer? (any result) then Enter
    page.keyboard.press("Enter")
    said(page, "Saved: Voicemail or no answer")
    page.keyboard.press("Alt+b")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    said(page, "You are on a break: Meal")
    expect(page.locator("#agent-state")).to_have_text("mei: on a break (Meal)")
    page.keyboard.press("Alt+r")
    said(page, "You are available for calls")


@pytest.mark.parametrize("mode", ["normal", "large", "contrast"])
def test_no_axe_violations(phone_page: Page, phone_server: PhoneServer, mode: str) -> None:
    page, srv = phone_page, phone_server
    if mode == "large":
        page.keyboard.press("Alt+g")
        expect(page.locator("#large-text")).to_have_attribute("aria-pressed", "true")
    if mode == "contrast":
        page.keyboard.press("Alt+k")
        expect(page.locator("#contrast")).to_have_attribute("aria-pressed", "true")
    assert_accessible(page)
    # and with a call and the wrap-up showing
    srv.far_end(lambda: srv.engine.ring("13800138003", {"campaign": "welfare"}))
    said(page, "Incoming call", assertive=True)
    page.keyboard.press("F2")
    said(page, "Connected")
    assert_accessible(page)
    page.keyboard.press("F4")
    said(page, "Wrap-up")
    assert_accessible(page)


def test_keys_act_once_the_page_says_it_is_ready(browser: Browser, phone_server: PhoneServer) -> None:
    """The key map arrives by its own request: until it has, the page is not ready and says so
    (no data-ready); a key pressed then is not acted on. Holding that request makes the race that
    a busy machine makes by chance happen every time."""
    page = new_page(browser)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/api/keys", hold)
    try:
        page.goto(phone_server.url)
        expect(page.locator("#registration")).to_have_text("phone connected")  # the view is in
        assert held, "the page asked for its key map"
        expect(page.locator("html")).not_to_have_attribute("data-ready", "true")
        page.keyboard.press("Alt+g")
        expect(page.locator("#large-text")).to_have_attribute("aria-pressed", "false")
        held[0].continue_()
        wait_phone_ready(page)
        said(page, "Phone page ready")
        page.keyboard.press("Alt+g")
        expect(page.locator("#large-text")).to_have_attribute("aria-pressed", "true")
        said(page, "Large text on.")
    finally:
        page.context.close()


def test_the_page_needs_its_token(phone_server: PhoneServer, browser: Browser) -> None:
    page = new_page(browser)
    resp = page.goto(f"http://127.0.0.1:{phone_server.port}/")
    assert resp is not None and resp.status == 403
    page.context.close()


# ---------------------------------------------------------------- calls the agent places


def _preview_campaign(db: Database) -> dict[str, int]:
    """A running preview campaign with two plain contacts and two callbacks kept for mei: one due,
    one due in two hours (always inside the campaign's all-day window)."""
    make_agents(db, {"mei": []})
    now = utcnow()
    ids: dict[str, int] = {}
    with db.session() as s:
        spec = svc.build_spec({"name": "w48", "mode": "preview", "windows": {"daily": ["00:00-24:00"]}})
        campaign = svc.create_campaign(s, spec, actor="t")
        campaign.status = CampaignStatus.running
        for name, phone, due in (
            ("王奶奶", "+8613800138009", None),
            ("李爷爷", "+8613800138001", None),
            ("张阿姨", "+8613800138002", now - timedelta(minutes=1)),
            ("赵叔叔", "+8613800138003", now + timedelta(hours=2)),
        ):
            contact = Contact(campaign_id=campaign.id, phone_e164=phone, name=name, fields={"社区": "朝阳"})
            if due is not None:
                contact.next_due_at, contact.assigned_agent = due, "mei"
                contact.assigned_until = due + timedelta(minutes=30)
            s.add(contact)
            s.flush()
            ids[name] = contact.id
    return ids


def test_preview_skip_call_and_callbacks_by_keyboard(
    browser: Browser, settings: Settings, db: Database
) -> None:
    """Alt+N hears the next contact (masked number read digit by digit), Alt+X skips it with a
    reason, F9 calls (the phone answers its own leg), Alt+U lists my callbacks and Enter calls one;
    the server stores each step and says a refusal. The phone speaks zh-CN, its default."""
    ids = _preview_campaign(db)
    with LiveServer(settings, db) as api, PhoneServer(api.url, locale="zh_CN") as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            wait_phone_ready(page)
            expect(page.locator("#preview-h")).to_have_text("我拨打的电话")
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")  # the whole page, not a section

            page.keyboard.press("Alt+n")  # my due callback comes first
            said(page, "下一位联系人：张阿姨，活动 w48。号码 1 3 8, 4 位隐藏数字, 8 0 0 2。")
            said(page, "这是您的回拨")
            expect(page.locator("#preview")).to_be_focused()
            expect(page.locator("#preview-facts")).to_contain_text("138****8002")
            assert "13800138002" not in page.content(), "never the full number"
            assert_accessible(page)

            page.keyboard.press("Alt+x")  # skip: reason 1, Enter
            expect(page.locator("#skip-reasons input").first).to_be_focused()
            assert_accessible(page)
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            said(page, "已跳过：现在不适合给此人打电话。")
            with db.session() as s:
                [skip] = s.scalars(select(PreviewSkip)).all()
                assert (skip.contact_id, skip.agent, skip.reason) == (ids["张阿姨"], "mei", "not_now")

            page.keyboard.press("Alt+n")
            said(page, "下一位联系人：王奶奶")
            page.keyboard.press("F9")  # call: the server stores the request, then rings my phone first
            said(page, "正在呼叫 王奶奶。您的话机会先响铃并自动接听。")
            with db.session() as s:
                attempt = s.scalar(select(Attempt).where(Attempt.contact_id == ids["王奶奶"]))
                assert attempt is not None and (attempt.agent, attempt.state) == ("mei", AttemptState.created)
                call_ref = attempt.id
            # what the dialer does next: the agent's leg rings with the call's attempt
            headers = {"attempt": call_ref, "placed": "1", "campaign": "w48", "phone": "138****8009"}
            cid = srv.far_end(lambda: srv.engine.ring("warmline", headers))
            said(page, "正在拨打 王奶奶，您会听到回铃音。")
            assert srv.engine.log[-1] == f"answer {cid} 200", "the phone answered its own call"
            said(page, "已接通 王奶奶")
            srv.far_end(lambda: srv.engine.remote_hangup(cid))
            said(page, "话后小结")
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            said(page, "已保存：")
            assert [w["call_ref"] for w in srv.wrapups] == [call_ref], "the wrap-up is for the placed call"
            with db.session() as s:  # and the dialer closes the call (it is placed in the fake-ARI tests)
                close(s, call_ref, CallFacts(answered=True, flow_outcome="agent"), utcnow())

            page.keyboard.press("Alt+u")  # my callbacks: the one left is not due yet
            said(page, "为您保留的回拨共 1 个，其中 0 个现在到期。")
            expect(page.locator("#callback-list button").first).to_be_focused()
            expect(page.locator("#callback-list")).to_contain_text("赵叔叔")
            assert_accessible(page)
            page.keyboard.press("Enter")  # calling it before it is due: the server says when
            said(page, "此回拨预约在", assertive=True)
        finally:
            page.context.close()
