"""A call's script and form on the softphone page, answered by keyboard alone, against the real
service: the page shows the script fetched with the call's ticket (headings to jump between, a
Chinese list column in the pop), a wrong answer is said and its field marked and described, the
corrected form is saved, the wrap-up carries the answers and the server stores them on the attempt.
axe-core finds nothing on the page with the script and the form showing, nor with an error.

The phone logic and its server client are real; the SIP engine is the FakeEngine (the real engine
is tested in tests/integration)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from agents.handover.screen_pop import field_header_name
from core.auth import service
from core.auth.models import Role
from core.call_tickets import mint, ticket_secret
from core.db import Database, utcnow
from core.i18n import set_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.ledger import claim, took_call
from dialer.models import Attempt, CampaignStatus, Contact
from softphone.account import SipAccountSettings
from softphone.fake import FakeEngine
from softphone.outbox import WrapUpOutbox
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from softphone.ui.app import create_ui
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import SERVER_START_S, LiveServer, new_page, wait_phone_ready
from tests.e2e.test_softphone_ui import said
from tests.unit.test_forms_scripts import FORM_YAML
from tests.utils import PASSWORD, free_port

pytestmark = pytest.mark.e2e
SCRIPT = "# 开场白\n{姓名}您好，我是{agent}，{社区}社区的工作人员。\n\n# 核对\n请问您今年多大年纪？"


class ServedPhone:
    """The softphone page's phone, signed in to the live service, posting wrap-ups through its
    outbox, with the FakeEngine for SIP; on its own uvicorn loop in a thread."""

    def __init__(self, url: str) -> None:
        self.engine = FakeEngine()
        self.client = ServerClient(url)
        self.outbox = WrapUpOutbox(self.client.post_wrapup)
        self.phone = Softphone(
            self.engine, AgentStatus("mei", NullPublisher()), server=self.client, on_wrapup=self.outbox.submit
        )
        self.app = create_ui(self.phone, token="test-token")
        self.port = free_port()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app.router.on_startup.append(self._startup)
        self.app.router.on_shutdown.append(self.client.aclose)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        # The phone speaks its process's language; this test reads the English words.
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        set_locale("en")
        self.server.run()

    async def _startup(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.client.login("mei", PASSWORD)
        await self.phone.start(SipAccountSettings("mei", "pw", "sip:127.0.0.1:5060"))

    def far_end(self, fn: Callable[[], Any]) -> Any:
        assert self.loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?t=test-token"

    def __enter__(self) -> ServedPhone:
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
def call(db: Database, settings: Settings) -> tuple[str, dict[str, str]]:
    """Campaign c1 with a form and a script; its contact's call is ringing for mei."""
    data, _lines = svc.read_settings(FORM_YAML)
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        campaign = svc.create_campaign(
            s,
            svc.build_spec(
                {"name": "c1", "script": SCRIPT, "form": data["form"], "windows": {"daily": ["00:00-23:59"]}}
            ),
            actor="t",
        )
        campaign.status = CampaignStatus.running
        s.add(Contact(campaign_id=campaign.id, phone_e164="+8613800138000", name="王奶奶",
                      fields={"社区": "朝阳", "身份证号": "110101194501011234"}))  # fmt: skip
    with db.session() as s:
        [claimed] = claim(s, svc.require_campaign(s, "c1"), 1, utcnow(), node="lab")
    with db.session() as s:
        took_call(s, claimed.attempt_id, "mei")  # as the hand-over notes it on answer
    aid = claimed.attempt_id
    ticket = mint(ticket_secret(settings.var_dir), call_ref=aid, agent="mei", now=utcnow(), campaign="c1")
    headers = {
        "campaign": "c1",
        "attempt": aid,
        "ticket": quote(ticket),
        "phone": "138****8000",
        "field-name": quote("王奶奶"),
        field_header_name("社区").lower(): quote("朝阳"),
    }
    return aid, headers


@pytest.fixture
def served(live_server: LiveServer, call: tuple[str, dict[str, str]]) -> Iterator[ServedPhone]:
    """The phone signs in once its user exists (the call fixture makes it)."""
    with ServedPhone(live_server.url) as srv:
        yield srv


def test_form_answered_by_keyboard(
    browser: Browser, served: ServedPhone, call: tuple[str, dict[str, str]], db: Database
) -> None:
    aid, headers = call
    page: Page = new_page(browser)
    try:
        page.goto(served.url)
        wait_phone_ready(page)
        served.far_end(lambda: served.engine.ring("13800138000", headers))
        said(page, "Incoming call from 138****8000", assertive=True)
        script = page.locator("#pop-script")
        expect(script.get_by_role("heading", level=2, name="开场白")).to_be_visible()
        expect(script).to_contain_text("王奶奶您好，我是mei，朝阳社区的工作人员")
        expect(page.locator("#pop-fields")).to_contain_text("社区")
        assert "110101" not in page.content() and "13800138000" not in page.content()
        form = page.locator("#desk-form")
        expect(form).to_be_visible()
        expect(form.get_by_role("heading", level=2)).to_contain_text("回访")
        page.keyboard.press("F2")
        said(page, "Connected to")
        assert_accessible(page)

        page.keyboard.press("Alt+i")  # to the form's first question
        first = page.get_by_role("radio", name="是")
        expect(first).to_be_focused()
        page.keyboard.press("Space")
        expect(first).to_be_checked()
        age = page.get_by_role("textbox", name="年龄")
        expect(age).to_be_visible()  # shown once 是 is chosen
        page.keyboard.press("Tab")
        expect(age).to_be_focused()
        expect(age).to_have_accessible_description(re.compile("120"))  # its range, said with the label
        page.keyboard.type("130")
        page.keyboard.press("Alt+v")
        said(page, "年龄", assertive=True)
        expect(age).to_be_focused()
        expect(age).to_have_attribute("aria-invalid", "true")
        error = page.locator("#q-age-error")
        expect(error).to_contain_text("120")
        expect(age).to_have_accessible_description(re.compile(re.escape(error.inner_text())))
        assert_accessible(page)
        with db.session() as s:  # what passed is kept on the server as the draft
            attempt = s.get(Attempt, aid)
            assert attempt is not None and attempt.detail["form_draft"]["answers"] == {"reached": "yes"}

        page.keyboard.press("Control+a")
        page.keyboard.type("81")
        page.keyboard.press("Alt+v")
        expect(page.locator("#form-state")).not_to_have_text("")
        expect(age).not_to_have_attribute("aria-invalid", "true")

        page.keyboard.press("F4")
        said(page, "Wrap-up. Choose the result with keys 1 to 9")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        said(page, "Saved: Reached, confirmed.")
        with db.session() as s:
            attempt = s.scalar(select(Attempt).where(Attempt.id == aid))
            assert attempt is not None and attempt.disposition == "confirmed"
            assert attempt.answers == {"reached": "yes", "age": 81}
    finally:
        page.context.close()
