"""Every console page in Chromium in both languages, axe-clean in both.

A Chinese browser and a user who made no choice: every page says `<html lang="zh-CN">` and shows no
English sentence of the catalogue (a message left untranslated fails here). The same user chooses
English on My settings by keyboard: stored, and from then on every page says `<html lang="en">`
and shows no Chinese outside what is marked `lang="zh-CN"` (the name 简体中文 on the settings page).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from agents.transfer.models import Transfer
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.i18n import PACKAGES
from core.i18n_extract import extract
from dialer import campaigns
from dialer.models import Attempt, AttemptState, Contact
from dialer.welfare import service as welfare
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_console import sign_in_by_keyboard
from tests.utils.live_server import LiveServer
from warmline.console.nav import SECTIONS

pytestmark = pytest.mark.e2e  # a Chinese browser (tests/e2e/conftest.py)
PW = "correct horse battery"
PAGES = [s.path for s in SECTIONS] + ["/console/campaigns/welfare-w48", "/console/campaigns/welfare-w48/live"]
PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}|%\([a-z_][a-z0-9_]*\)[sd]|%%")
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")

# The page's text as read, leaving out what is marked as another language than the page's.
READ = """lang => {
  const copy = document.body.cloneNode(true);
  for (const el of copy.querySelectorAll("[lang]:not([lang='" + lang + "'])")) el.remove();
  for (const el of copy.querySelectorAll("script")) el.remove();
  return copy.textContent.replace(/\\s+/g, " ");
}"""


def english_sentences() -> set[str]:
    """Every stretch of two or more English words in the catalogue's messages."""
    found: set[str] = set()
    for package in PACKAGES:
        for message in extract(package):
            ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
            for msgid in ids:
                for part in PLACEHOLDER.split(str(msgid)):
                    part = part.strip(" .,;:()“”'")
                    if len(re.findall(r"[A-Za-z]{2,}", part)) >= 2:
                        found.add(part)
    return found


@pytest.fixture
def centre(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "eve", Role.admin, PW, actor="test", display_name="Eve Lin")
        spec = campaigns.build_spec(
            {"name": "welfare-w48", "kind": "agent", "elder_welfare": True, "mode": "preview", "manual_dial": True,
             "transfer_numbers": {"社区卫生服务中心": "010-6555 0000"}}
        )  # fmt: skip
        campaign = campaigns.create_campaign(s, spec, actor="test")
        contact = Contact(campaign_id=campaign.id, phone_e164="+8613800138000", name="Granny Wang", fields={})
        s.add(contact)
        s.flush()
        # A call of the contact's handed to a colleague and to an outside number: the contact
        # table's transfers column, in both languages.
        s.add(Attempt(id="a-1", campaign_id=campaign.id, contact_id=contact.id, attempt_no=1, node="lab",
                      state=AttemptState.ended, outcome="agent", agent="eve"))  # fmt: skip
        s.flush()
        for n, (kind, target, result) in enumerate(
            (("agent", "lin", "cancelled"), ("number", "社区卫生服务中心", "answered"))
        ):
            s.add(Transfer(id=f"x{n}", call_ref="a-1", from_agent="eve", kind=kind, mode="attended",
                           target=target, state="completed", result=result))  # fmt: skip
        welfare.raise_alert(s, campaign=campaign, contact=contact, attempt_id=None, kind="help", detail={})


def visit(page: Page, server: LiveServer, path: str, lang: str) -> str:
    page.goto(server.url + path)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.wait_for_load_state()
    assert_accessible(page)
    return str(page.evaluate(READ, lang))


def test_every_page_in_chinese_then_in_english_once_chosen(
    page: Page, live_server: LiveServer, centre: None, db: Database
) -> None:
    sentences = english_sentences()
    assert len(sentences) > 300
    sign_in_by_keyboard(page, live_server, "eve", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("首页")
    for path in PAGES:
        text = visit(page, live_server, path, "zh-CN")
        left = sorted(s for s in sentences if s in text)
        assert not left, f"{path}: English left on a Chinese page: {left}"
        assert CJK.search(text), path

    # My settings, by keyboard: the English choice, saved with Enter.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="我的设置").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("我的设置")
    english = page.get_by_role("radio", name="English")
    english.focus()
    page.keyboard.press("Space")
    expect(english).to_be_checked()
    page.get_by_role("button", name="保存").focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("status")).to_have_text(
        "Saved. Pages, announcements and messages are now in English."
    )
    expect(page.get_by_role("radio", name="English")).to_be_checked()
    with db.session() as s:
        assert service.require_user(s, "eve").language == "en"

    for path in PAGES:
        text = visit(page, live_server, path, "en")
        assert not CJK.search(text), f"{path}: Chinese left on an English page: {CJK.findall(text)[:10]}"
    # The alert says its masked number digit by digit to a screen reader, in English too.
    page.goto(live_server.url + "/console/alerts")
    expect(
        page.get_by_role("row", name=re.compile("Granny Wang, 1 3 8, 4 digits hidden, 8 0 0 0"))
    ).to_be_visible()
