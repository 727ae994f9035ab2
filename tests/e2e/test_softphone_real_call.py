"""A real call on the softphone's local page: Chromium, keyboard only, real pjsua2, real lab Asterisk.

The agent's softphone signs in to a live warmline server (provisioned SIP account), registers its
real pjsua2 engine with a private lab Asterisk (ARI 24088, SIP 21060, RTP 22000-22999) and serves
its page; the test takes a call from the lab (ARI originates to mei's endpoint, joined to a lab callee
that talks) and reads only what a screen reader would be told: the live regions' text.

Playwright's sync API keeps an event loop in the test thread, so the softphone, its engine and the
ARI client live on their own loop in a background thread; the module's `lab` fixture (which uses
`asyncio.run`) is requested before the browser.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from core.auth.models import Role
from core.db import Database
from core.i18n import set_locale
from core.settings import Settings
from softphone.engine import Engine, EngineConfig
from softphone.phone import DISPOSITIONS, PhoneOptions, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from softphone.ui.app import create_ui
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import SERVER_START_S, LiveServer, new_page, wait_phone_ready
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils import free_port
from warmline import accounts, migrate

pytestmark = pytest.mark.e2e

PORTS = lab_ports("softphone_real_call")
AGENT = "mei"
PASSWORD = "lab-agent-password-1"
TOKEN = "real-call-token"
ENDPOINTS: dict[str, str] = {}  # agent -> their random PJSIP endpoint id


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    var = tmp_path_factory.mktemp("softphone-real-call") / "var"
    with private_lab(var, PORTS) as settings:
        migrate.upgrade(settings.db_url)
        db = Database(settings.db_url)
        try:
            change = asyncio.run(accounts.add_user(settings, db, AGENT, Role.agent, PASSWORD, actor="test"))
            assert change.sip_endpoint and change.sip_endpoint != AGENT, "endpoint ids are not logins"
            ENDPOINTS[AGENT] = change.sip_endpoint
            with LiveServer(settings, db) as server:
                yield settings, server.url
        finally:
            db.dispose()


class RealPhone:
    """The softphone as `warmline softphone` runs it (sign in, provisioned SIP, real engine, UI),
    on its own event loop in a background thread."""

    def __init__(self, settings: Settings, server_url: str) -> None:
        self.settings = settings
        self.server_url = server_url
        self.port = free_port()
        self.publisher = NullPublisher()
        self.wrapups: list[dict[str, Any]] = []
        self.phone: Softphone | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.uvicorn: uvicorn.Server | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="real-softphone")

    def _run(self) -> None:
        set_locale("en")  # the phone speaks its process's language; this test reads the English words
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        server = ServerClient(self.server_url)
        await server.login(AGENT, PASSWORD)
        sip = await server.sip_account()

        async def keep_wrapup(record: dict[str, Any]) -> None:
            self.wrapups.append(record)

        try:
            async with Engine(EngineConfig(headless=True)) as engine:
                phone = Softphone(
                    engine,
                    AgentStatus(AGENT, self.publisher),
                    server=server,
                    options=PhoneOptions(),
                    on_wrapup=keep_wrapup,
                )
                self.phone = phone
                await phone.start(sip)
                app = create_ui(phone, token=TOKEN)
                self.uvicorn = uvicorn.Server(
                    uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
                )
                serving = asyncio.create_task(self.uvicorn.serve())
                bind_deadline = self.loop.time() + SERVER_START_S
                while not (self.uvicorn.started or serving.done()):  # waits for uvicorn to bind
                    if self.loop.time() > bind_deadline:
                        break
                    await asyncio.sleep(0.05)
                self.ready.set()
                try:
                    await serving
                finally:
                    await phone.close()
        finally:
            await server.aclose()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run `coro` on the softphone's loop (ARI calls, checks) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?t={TOKEN}"

    def __enter__(self) -> RealPhone:
        self.thread.start()
        assert self.ready.wait(SERVER_START_S + 30), "the softphone did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
        self.thread.join(20)


def said(page: Page, text: str, assertive: bool = False, timeout: float = 30_000) -> None:
    region = page.locator("#say-assertive" if assertive else "#say-polite")
    try:
        expect(region).to_contain_text(text, timeout=timeout)
    except AssertionError as exc:  # say everything the phone said, newest first
        log = page.locator("#said-log").inner_text()
        raise AssertionError(f"{text!r} not said; the phone said:\n{log}") from exc


async def _originate(settings: Settings, channel_id: str) -> None:
    """The lab calls the agent; once answered the agent's leg runs a lab callee that talks."""
    async with lab_client(settings) as ari:
        await ari.originate(
            f"PJSIP/{ENDPOINTS[AGENT]}",
            channel_id=channel_id,
            context="lab-pstn",
            extension="13800138009",
            timeout=20,
            variables={
                "PJSIP_HEADER(add,X-Warmline-Campaign)": "flu-2026",
                "PJSIP_HEADER(add,X-Warmline-Phone)": "13800138000",
            },
        )


async def _channel_state(settings: Settings, channel_id: str) -> str | None:
    async with lab_client(settings) as ari:
        try:
            channel = await ari.get_channel(channel_id)
        except Exception:
            return None  # gone
        return str(channel["state"])


def _wait_channel(srv: RealPhone, settings: Settings, channel_id: str, want: str | None) -> None:
    deadline = time.monotonic() + 30
    state = srv.run(_channel_state(settings, channel_id))
    while state != want:
        assert time.monotonic() < deadline, f"channel {channel_id} is {state}, not {want}"
        time.sleep(0.1)
        state = srv.run(_channel_state(settings, channel_id))


def test_real_call_by_keyboard(lab: tuple[Settings, str], browser: Browser) -> None:
    settings, url = lab
    with RealPhone(settings, url) as srv:
        page = new_page(browser)
        try:
            page.goto(srv.url)
            # signed in with the provisioned account, registered with the lab's Asterisk
            expect(page.locator("#registration")).to_have_text("phone connected", timeout=60_000)
            wait_phone_ready(page)  # no key before the page has its key map
            assert srv.phone is not None and srv.phone.registered
            assert any(f"Logged in as {AGENT}" in a.text for a in srv.phone.announcements)
            expect(page.locator("#agent-state")).to_have_text(f"{AGENT}: available")

            # a break and back: the agent makes themself available by keyboard
            page.keyboard.press("Alt+b")
            page.keyboard.press("2")
            page.keyboard.press("Enter")
            said(page, "You are on a break: Meal")
            page.keyboard.press("Alt+r")
            said(page, "You are available for calls")
            expect(page.locator("#agent-state")).to_have_text(f"{AGENT}: available")

            # the lab calls: the page says it is ringing (masked number, campaign, the key)
            channel = f"e2e-{uuid.uuid4().hex[:8]}"
            srv.run(_originate(settings, channel))
            said(page, "Incoming call from", assertive=True)
            said(page, "138****8000", assertive=True)
            said(page, "campaign flu-2026", assertive=True)
            said(page, "Press F2 to answer", assertive=True)
            assert "13800138000" not in page.content()

            page.keyboard.press("F2")  # answer (softphone/keymap.py)
            said(page, "Connected to")
            expect(page.locator("#agent-state")).to_have_text(f"{AGENT}: on a call")
            _wait_channel(srv, settings, channel, "Up")  # Asterisk agrees: the leg is answered
            assert_accessible(page)

            page.keyboard.press("F4")  # hang up
            said(page, "Call ended after")
            said(page, "Wrap-up. Choose the result with keys 1 to 9")
            expect(page.locator("#agent-state")).to_have_text(f"{AGENT}: in wrap-up")
            _wait_channel(srv, settings, channel, None)  # and the lab's leg is gone

            page.keyboard.press("1")
            expect(page.locator("#disposition-1")).to_be_checked()
            page.keyboard.press("Enter")
            said(page, f"Saved: {DISPOSITIONS['1']}. You are available for calls.")
            expect(page.locator("#agent-state")).to_have_text(f"{AGENT}: available")

            assert [w["disposition"] for w in srv.wrapups] == ["confirmed"]  # key 1's code
            states = [m.state for m in srv.publisher.sent if hasattr(m, "state")]
            assert states == ["available", "break", "available", "on_call", "wrap_up", "available"]
            assert_accessible(page)
        finally:
            page.context.close()
