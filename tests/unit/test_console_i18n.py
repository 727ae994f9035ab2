"""Every console page in the reader's language, on SQLite and PostgreSQL: zh-CN by default, English
for a user who chose it (whatever the browser says); `<html lang>` says which; the page scripts get
their strings; times are on the centre's clock; a masked number is also given digit by digit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from agents.states import record_state
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.messages import AgentState
from core.settings import Settings
from dialer import campaigns
from dialer.models import Contact
from dialer.welfare import service as welfare
from tests.utils import PASSWORD, console_login
from warmline.app import create_app
from warmline.console.nav import SECTIONS

# Every page of the console, and a word each language's version of it must say.
PAGES = [s.path for s in SECTIONS] + ["/console/campaigns/welfare-w48", "/console/campaigns/welfare-w48/live"]
UNTRANSLATED = re.compile(r">\s*(Home|Campaigns|Sign out|Welfare alerts|My day|Agents)\s*<")


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with db.session() as s:
        service.create_user(s, "root", Role.admin, PASSWORD, actor="test")
        service.create_user(s, "eve", Role.admin, PASSWORD, actor="test", language="en")
        spec = campaigns.build_spec({"name": "welfare-w48", "kind": "agent", "elder_welfare": True})
        campaign = campaigns.create_campaign(s, spec, actor="test")
        contact = Contact(campaign_id=campaign.id, phone_e164="+8613800138000", name="王奶奶", fields={})
        s.add(contact)
        s.flush()
        welfare.raise_alert(s, campaign=campaign, contact=contact, attempt_id=None, kind="help", detail={})
    with TestClient(create_app(settings, db)) as c:
        yield c


def sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    resp = console_login(client, name)
    assert resp.status_code == 303


def test_every_page_is_chinese_by_default_and_english_for_an_english_user(client: TestClient) -> None:
    sign_in(client, "root")
    for path in PAGES:
        page = client.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert page.status_code == 200, path
        assert '<html lang="zh-CN">' in page.text, path
        assert ">首页</a>" in page.text and "退出登录" in page.text, path
        assert not UNTRANSLATED.search(page.text), f"{path}: {UNTRANSLATED.search(page.text)}"
        embedded = re.search(r'id="wl-catalogue"[^>]*>(.*?)</script>', page.text)
        assert embedded is not None, path
        catalogue = json.loads(embedded.group(1))
        assert catalogue["Wallboard is live again."] == "实时看板已恢复更新。"
    sign_in(client, "eve")  # chose English; her browser is Chinese
    for path in PAGES:
        page = client.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert '<html lang="en">' in page.text, path
        assert ">Home</a>" in page.text and "Sign out" in page.text, path
        assert "首页" not in page.text and "退出登录" not in page.text, path
        assert 'id="wl-catalogue" type="application/json">{}</script>' in page.text


def test_the_sign_in_page_follows_the_browser(client: TestClient) -> None:
    assert '<html lang="zh-CN">' in client.get("/login").text
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert '<html lang="en">' in english and "User name" in english
    wrong = client.post("/login", data={"username": "root", "password": "nope"})
    assert wrong.status_code == 401 and "登录失败：用户名或密码错误。" in wrong.text


def test_my_day_is_on_the_centres_clock(client: TestClient, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        # 01:05 UTC is 09:05 in Shanghai, the centre's zone (Settings.timezone).
        record_state(
            s, AgentState(agent="mei", state="available", since=datetime(2026, 11, 24, 1, 5, tzinfo=UTC))
        )
    sign_in(client, "mei")
    page = client.get("/console/my-day").text
    assert "当前状态：空闲（自 09:05 起）。" in page and "UTC" not in page
    assert "今天已工作" in page and "的目标" in page, "the hours summary in the live region"


def test_an_alert_shows_the_masked_number_and_says_it_digit_by_digit(client: TestClient) -> None:
    sign_in(client, "root")
    page = client.get("/console/alerts").text
    assert '<span aria-hidden="true">王奶奶，138****8000，请求帮助（welfare-w48）。</span>' in page
    assert (
        '<span class="visually-hidden">王奶奶，1 3 8，隐藏4位，8 0 0 0，请求帮助（welfare-w48）。</span>'
        in page
    )
    assert "13800138000" not in page
    api = client.get("/api/welfare/alerts", headers={"Accept-Language": "en"}).json()["alerts"][0]
    assert api["summary"] == "王奶奶, 138****8000, asked for help (welfare-w48)."
    assert api["spoken"] == "王奶奶, 1 3 8, 4 digits hidden, 8 0 0 0, asked for help (welfare-w48)."
