"""The softphone's page in the agent's language: zh-CN by default with `<html lang>` saying so and no
English left in what a person reads (key names aside), English complete for an agent who chose it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from core.i18n import use_locale
from softphone.fake import FakeEngine
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.ui.app import create_ui

TOKEN = "page-token"
KEY_NAME = re.compile(r"^(?:(?:Ctrl|Alt|Shift)\+)*(?:F\d{1,2}|[A-Z0-9]|Enter|Escape|Tab)$")


class ReadableText(HTMLParser):
    """The words a person reads or hears: text outside scripts and `<kbd>`, and the labels."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "kbd"):
            self._skip += 1
        self.words += [v for k, v in attrs if k in ("aria-label", "title", "placeholder") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "kbd"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.words.append(data.strip())


def _page(locale: str) -> str:
    phone = Softphone(FakeEngine(), AgentStatus("mei", NullPublisher()))
    with use_locale(locale), TestClient(create_ui(phone, token=TOKEN), base_url="http://127.0.0.1") as client:
        resp = client.get("/", params={"t": TOKEN})
    assert resp.status_code == 200
    return str(resp.text)


def _english_words(page: str) -> list[str]:
    reader = ReadableText()
    reader.feed(page)
    return [w for w in reader.words if re.search(r"[A-Za-z]{2,}", w) and not KEY_NAME.match(w)]


def test_the_page_is_chinese_by_default_with_nothing_left_in_english() -> None:
    page = _page("zh_CN")
    assert '<html lang="zh-CN">' in page
    assert '<h2 id="call-h">当前通话</h2>' in page
    assert [w for w in _english_words(page) if not re.search(r"[\u4e00-\u9fff]", w)] == []


def test_an_english_agent_reads_it_all_in_english() -> None:
    page = _page("en")
    assert '<html lang="en">' in page
    assert '<h2 id="call-h">Current call</h2>' in page
    assert not re.search(r">[^<]*[\u4e00-\u9fff]", page.split('id="i18n-catalogue"')[0])
