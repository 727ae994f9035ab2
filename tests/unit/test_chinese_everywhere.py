"""Chinese everywhere a person reads, on SQLite and PostgreSQL: a zh-CN user walks the API's error
paths and every console page, and no English sentence may be left -- codes (``not_your_call``,
``call_ref``), numbers and proper names (users, campaigns, skills) are allowed, sentences are not.
On the pages, English words a Chinese page carries (codes, commands, a language's own name) must
sit in an element marked ``lang="en"``, so a screen reader reads them with an English voice.

English stays complete: the same walk for a user who chose English finds English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agents.transfer.models import Transfer
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer import campaigns
from dialer.models import CampaignStatus, Contact
from tests.unit.test_wrapup import hang_up, taken
from tests.utils import PASSWORD, console_login
from tests.utils.api import login
from warmline.app import create_app
from warmline.console.nav import SECTIONS

T0 = datetime(2024, 11, 4, 2, 0, tzinfo=UTC)
PAGES = [s.path for s in SECTIONS] + ["/console/campaigns/c1", "/console/campaigns/c1/live"]
# Three English words in a row outside a `lang="en"` element: a sentence someone forgot (a list of
# codes, "admin, manager, supervisor", is not one).
SENTENCE = re.compile(r"[A-Za-z][a-z']+(?: [A-Za-z][a-z']+){2,}")
# Words a Chinese text may carry as they are: the test's proper names and fixed technical names.
NAMES = {
    "mei",
    "lan",
    "root",
    "eve",
    "sup",
    "c1",
    "lin",
    "welfare",
    "CSV",
    "XLSX",
    "Excel",
    "JSON",
    "YAML",
    "IVR",
}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
READ_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")


class Reader(HTMLParser):
    """The text a person reads (and the attributes a screen reader says), each with the language
    the page marks it in; scripts and styles are not read."""

    def __init__(self, page_lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = [("html", page_lang)]
        self.texts: list[tuple[str, str, str]] = []  # (text, lang, tag)
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        lang = found.get("lang") or self.stack[-1][1]
        for name in READ_ATTRIBUTES:
            if found.get(name):
                self.texts.append((str(found[name]), lang, f"{tag}[{name}]"))
        if tag in VOID:
            return
        if tag in ("script", "style", "template"):
            self.skip += 1
        self.stack.append((tag, lang))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while len(self.stack) > 1:
            popped, _lang = self.stack.pop()
            if popped in ("script", "style", "template"):
                self.skip -= 1
            if popped == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skip or not data.strip():
            return
        tag, lang = self.stack[-1]
        self.texts.append((data.strip(), lang, tag))


def read(html: str) -> tuple[str, list[tuple[str, str, str]]]:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match is not None, "the page says its language"
    reader = Reader(match.group(1))
    reader.feed(html)
    return match.group(1), reader.texts


def english_left(text: str) -> list[str]:
    """The English sentences in `text` (proper names and codes taken out first)."""
    # `code`, “what someone typed”, snake_case, paths
    cleaned = re.sub(r"`[^`]*`|“[^”]*”|'[^']*'|\b\w+_\w+\b|\b[\w.-]+/[\w./-]+\b", " ", text)
    cleaned = "".join(w for w in re.split(r"(\s+)", cleaned) if w.strip(",.;:()（）") not in NAMES)
    return SENTENCE.findall(cleaned)


def chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (
            ("root", Role.admin),
            ("mei", Role.agent),
            ("lan", Role.agent),
            ("sup", Role.supervisor),
        ):
            service.create_user(s, name, role, PASSWORD, actor="test")
        service.create_user(s, "eve", Role.admin, PASSWORD, actor="test", language="en")
        spec = campaigns.build_spec(
            {"name": "c1", "kind": "agent", "mode": "preview", "manual_dial": True,
             "windows": {"daily": ["09:00-12:00", "14:00-18:00"]},
             "transfer_numbers": {"社区卫生服务中心": "010-6555 0000"}}
        )  # fmt: skip
        campaign = campaigns.create_campaign(s, spec, actor="test")
        campaign.status = CampaignStatus.running
        s.add(Contact(campaign_id=campaign.id, phone_e164="+8613800000001", name="王奶奶"))
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=3))
    with db.session() as s:
        s.add(
            Transfer(
                id="x1", call_ref=aid, from_agent="mei", kind="number", mode="attended", target="010****0000",
                number="01065550000", state="completed", result="answered", requested_at=T0 + timedelta(minutes=1),
            )
        )  # fmt: skip
    app = create_app(settings, db)
    with TestClient(app) as c:
        c.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
        c.app_state_attempt = aid
        yield c


def messages(body: Any) -> Iterator[str]:
    """Every text meant for a person in an error body: `message`, `msg`, `problems`."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("message", "msg") and isinstance(value, str):
                yield value
            elif key == "problems" and isinstance(value, list):
                yield from (str(p) for p in value)
            else:
                yield from messages(value)
    elif isinstance(body, list):
        for item in body:
            yield from messages(item)


def error_paths(client: TestClient) -> list[tuple[str, int, Any]]:
    """(what, status, body) of every error path walked, as mei, lan, sup and root ask."""
    aid = client.app_state_attempt
    mei, lan, sup, root = (login(client, n) for n in ("mei", "lan", "sup", "root"))
    wrapup = "/api/agents/me/wrapup"
    done = client.post(wrapup, headers=mei, json={"call_ref": aid, "disposition": "callback",
                                                  "callback_at": "2024-11-04T20:30:00"})  # fmt: skip
    assert done.status_code == 200 and chinese(done.json()["message"]), done.text
    walked = [
        ("wrap-up: not your call", lan, "POST", wrapup, {"call_ref": aid, "disposition": "confirmed"}),
        ("wrap-up: unknown call", mei, "POST", wrapup, {"call_ref": "no-such-call", "disposition": "confirmed"}),
        ("wrap-up: already", mei, "POST", wrapup, {"call_ref": aid, "disposition": "confirmed"}),
        ("wrap-up: malformed body", mei, "POST", wrapup, {"disposition": "x" * 40, "talk_seconds": "long"}),
        ("wrap-up: too many answers", mei, "POST", wrapup,
         {"call_ref": aid, "disposition": "done", "answers": {f"k{i}": 1 for i in range(101)}}),
        ("dispositions: unknown campaign", mei, "GET", "/api/agents/me/dispositions?campaign=nope", None),
        ("not signed in", {}, "GET", "/api/campaigns", None),
        ("wrong role", mei, "GET", "/api/campaigns", None),
        ("campaign: unknown", sup, "GET", "/api/campaigns/nope", None),
        ("campaign: bad settings", root, "POST", "/api/campaigns",
         {"name": "bad one", "timezone": "Mars/Olympus", "max_attempts": 0, "colour": "red"}),
        ("campaign: bad status", root, "POST", "/api/campaigns/c1/status", {"status": "sideways"}),
        ("export: bad columns", root, "GET", "/api/campaigns/c1/export?columns=titles", None),
        ("transfer: bad kind", mei, "POST", "/api/agents/me/transfers",
         {"call_ref": aid, "kind": "fax", "target": "lin", "mode": "blind"}),
    ]  # fmt: skip
    out = []
    for what, headers, method, path, body in walked:
        resp = client.request(method, path, headers=headers, json=body)
        out.append((what, resp.status_code, resp.json()))
    return out


def test_every_api_error_is_chinese_with_a_stable_code(client: TestClient) -> None:
    paths = error_paths(client)
    statuses = {what: status for what, status, _body in paths}
    assert statuses["wrap-up: not your call"] == 403
    assert statuses["wrap-up: unknown call"] == 404
    assert statuses["wrap-up: already"] == 409
    codes = {what: body["detail"].get("code") for what, _s, body in paths if isinstance(body["detail"], dict)}
    assert codes["wrap-up: not your call"] == "not_your_call"
    assert codes["wrap-up: unknown call"] == "unknown_call"
    assert codes["wrap-up: already"] == "already_wrapped_up"
    for what, status, body in paths:
        assert status >= 400, (what, body)
        said = list(messages(body))
        assert said, f"{what}: no message for a person in {body}"
        for text in said:
            assert chinese(text), f"{what}: not Chinese: {text!r}"
            assert not english_left(text), f"{what}: English left in {text!r}: {english_left(text)}"
        if isinstance(body["detail"], list):  # FastAPI's shape, with the type as a code
            assert all(item.get("code") and item.get("loc") for item in body["detail"]), (what, body)


def test_api_errors_stay_english_for_an_english_reader(client: TestClient) -> None:
    lan = login(client, "lan")
    aid = client.app_state_attempt
    resp = client.post(
        "/api/agents/me/wrapup",
        headers={**lan, "Accept-Language": "en"},
        json={"call_ref": aid, "disposition": "x"},
    )
    assert resp.status_code == 403
    assert (
        resp.json()["detail"]["message"] == f"Call '{aid}' was not taken by lan; only its agent wraps it up."
    )
    bad = client.post("/api/agents/me/wrapup", headers={**lan, "Accept-Language": "en"}, json={})
    assert {i["msg"] for i in bad.json()["detail"]} == {"This is required."}


def sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    assert console_login(client, name).status_code == 303


def test_every_console_page_is_chinese_with_english_marked(client: TestClient) -> None:
    sign_in(client, "root")
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        lang, texts = read(page.text)
        assert lang == "zh-CN", path
        for text, marked, tag in texts:
            if marked.startswith("en"):
                continue
            left = english_left(text)
            assert not left, f"{path} <{tag}>: English sentence in a Chinese page: {text!r} ({left})"
            if tag == "code":
                assert marked == "en", f"{path}: code {text!r} is not marked lang=en"


def test_the_campaign_page_shows_mode_manual_dial_and_transfers_in_chinese(client: TestClient) -> None:
    sign_in(client, "root")
    page = client.get("/console/campaigns/c1").text
    assert 'id="campaign-mode">预览' in page
    assert "允许：坐席可拨打输入的号码" in page
    assert "社区卫生服务中心" in page and "01065550000" not in page and "010****0000" in page
    table = page[page.index('id="contact-table"') :]
    table = table[: table.index("</table>")]
    assert "转到外部号码：转接完成：010****0000已接过来电者。" in table, table
    assert "13800000001" not in table, "numbers masked"


def test_english_is_complete_for_an_english_user(client: TestClient) -> None:
    sign_in(client, "eve")
    for path in PAGES:
        page = client.get(path)
        lang, texts = read(page.text)
        assert lang == "en", path
        for text, marked, tag in texts:
            if marked.startswith("zh") or tag == "option":
                continue
            assert not chinese(text) or text == "简体中文", (
                f"{path} <{tag}>: Chinese left in an English page: {text!r}"
            )
    page = client.get("/console/campaigns/c1").text
    assert "allowed: agents may dial typed numbers" in page and "to an outside number" in page
