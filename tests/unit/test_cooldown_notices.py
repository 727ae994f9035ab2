"""The agent is told of their cool-down: the service's follower of ``agent_cooldowns`` publishes each
start and end (agents.help.notices, both databases); ``GET /api/agents/me/cooldown`` gives the
seconds left and the reason; the service holds the notices for the agent's phone with the screen
pops (agents.screen_pops); the softphone says the start and the end once each, politely, in Chinese,
and "say my state" includes the rest (softphone.wellbeing, the real Softphone on the FakeEngine)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from agents.help import service
from agents.help.notices import CooldownWatch, cooldown_changes
from agents.screen_pops import ScreenPopBox
from core.db import Database
from core.i18n import use_locale
from core.messages import CallEvent
from softphone.fake import FakeEngine
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.server_pops import ScreenPopFeed
from softphone.wellbeing import Wellbeing
from tests.unit.test_help_api import EN, T0
from tests.unit.test_help_api import client as client
from tests.utils import login

# ---------------------------------------------------------------- the follower


def test_each_start_and_end_is_published_once(db: Database) -> None:
    watch = CooldownWatch(since=T0)
    with db.session() as s:
        service.start_cooldown(s, "old", "abusive", T0 - timedelta(minutes=1), 5)  # running before
        assert cooldown_changes(s, watch, T0) == [], "what ran before the follower began is not news"
        service.start_cooldown(s, "mei", "long_call", T0 + timedelta(seconds=10), 5, call_ref="att-1")
        service.start_cooldown(s, "lin", "escalated", T0 + timedelta(seconds=20), 1)
    with db.session() as s:
        events = cooldown_changes(s, watch, T0 + timedelta(seconds=30))
        assert [(e.kind, e.detail["agent"]) for e in events] == [("cooldown", "mei"), ("cooldown", "lin")]
        mei = events[0]
        assert mei.call_id == "att-1" and mei.detail["reason"] == "long_call"
        assert mei.detail["remaining_s"] == 280 and mei.detail["until"].startswith("2026-03-02T02:05:10")
        assert events[1].call_id.startswith("cooldown-"), "a rest with no call has a topic of its own"
        assert cooldown_changes(s, watch, T0 + timedelta(seconds=31)) == [], "said once"
        ends = cooldown_changes(s, watch, T0 + timedelta(minutes=4, seconds=10))
        assert [(e.kind, e.detail["agent"]) for e in ends] == [
            ("cooldown_end", "lin"),
            ("cooldown_end", "old"),
        ]
        ends = cooldown_changes(s, watch, T0 + timedelta(minutes=6))
        assert [(e.kind, e.detail["agent"], e.detail["remaining_s"]) for e in ends] == [
            ("cooldown_end", "mei", 0)
        ]
        assert cooldown_changes(s, watch, T0 + timedelta(minutes=7)) == []


def test_my_cooldown_says_the_seconds_left_and_why(client: TestClient) -> None:
    mei = login(client, "mei")
    none = client.get("/api/agents/me/cooldown", headers=mei).json()
    assert (none["remaining_s"], none["reason"], none["cooldown_until"]) == (0, None, None)
    assert client.post("/api/agents/me/calls/att-3/abusive", headers=mei).status_code == 200
    body = client.get("/api/agents/me/cooldown", headers={**mei, **EN}).json()
    assert (body["remaining_s"], body["reason"], body["minutes"]) == (300, "abusive", 5)
    assert body["message"] == "You have 5 minutes' rest. No call will be offered until 10:05."


# ---------------------------------------------------------------- the service holds them


def test_the_service_holds_notices_for_the_agents_phone() -> None:
    box = ScreenPopBox()
    detail = {"agent": "mei", "reason": "abusive", "until": "2026-03-02T02:05:00+00:00", "remaining_s": 300}
    held = box.put(CallEvent(call_id="att-1", kind="cooldown", detail=detail | {"cooldown_id": 4}))
    assert held is not None and held.fields["remaining_s"] == "300" and held.fields["cooldown_id"] == "4"
    assert box.put(CallEvent(call_id="att-1", kind="check_in", detail=detail)) is None
    assert [p.kind for p in box.held("mei", 0)] == ["cooldown"]
    assert box.held("lin", 0) == []
    assert box.held("mei", None) == [], "a phone that starts is not told old news"


# ---------------------------------------------------------------- the softphone says them


class Phone:
    def __init__(self) -> None:
        self.engine = FakeEngine()
        self.phone = Softphone(self.engine, AgentStatus("mei", NullPublisher()))

    def said(self) -> list[tuple[str, str]]:
        return [(a.text, a.politeness) for a in self.phone.announcements]


def run(coro: Any) -> Any:
    with use_locale("zh_CN"):
        return asyncio.run(coro)


def fields(kind_id: int, until: datetime, reason: str = "abusive") -> dict[str, str]:
    return {"agent": "mei", "reason": reason, "until": until.isoformat(), "cooldown_id": str(kind_id)}


def test_the_phone_says_the_rest_starting_and_ending_once_each() -> None:
    async def main() -> list[tuple[str, str]]:
        p = Phone()
        await p.phone.start()
        until = datetime.now(UTC) + timedelta(minutes=5)
        feed = ScreenPopFeed(None, p.phone)  # type: ignore[arg-type]  # deliver needs no server
        pop = {"kind": "cooldown", "attempt": "att-1", "fields": fields(7, until)}
        await feed.deliver(pop)
        await feed.deliver(pop)  # a second service process published it too
        assert p.phone.view()["cooldown"]["reason"] == "abusive"
        await p.phone.do_status()
        await feed.deliver({"kind": "cooldown_end", "attempt": "att-1", "fields": fields(7, until)})
        assert p.phone.view()["cooldown"] is None
        await p.phone.do_status()
        await p.phone.close()
        return p.said()

    said = run(main())
    until = (datetime.now(UTC) + timedelta(minutes=5)).astimezone().strftime("%H:%M")
    start, status, end, status_after = said
    assert start[0].startswith("冷静期（辱骂电话之后）：5分钟。") and start[1] == "polite"
    assert "之前不会为您分配来电" in start[0]
    assert "冷静期还剩5分钟" in status[0] or "冷静期还剩4分钟" in status[0]
    assert until[:2] in status[0]
    assert end == ("冷静期结束，可以重新为您分配来电了。", "polite")
    assert "冷静期" not in status_after[0]


def test_a_compliment_waits_for_the_end_of_the_call() -> None:
    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        p = Phone()
        await p.phone.start()
        line = p.engine.ring("warmline", {"attempt": "att-1"})
        await asyncio.sleep(0.05)
        await p.phone.do_answer()
        await asyncio.sleep(0.05)
        before = len(p.phone.announcements)
        await p.phone.notice("compliment", {"agent": "mei", "score": "5", "survey_id": "3"})
        await p.phone.notice(
            "compliment", {"agent": "mei", "score": "5", "survey_id": "3"}
        )  # twice published
        during = p.said()[before:]
        p.engine.remote_hangup(line)
        await asyncio.sleep(0.1)
        after = p.said()[before:]
        await p.phone.close()
        return during, after

    during, after = run(main())
    assert during == [], "never over a call"
    assert after.count(("一位来电者给您的服务打了5分（满分5分），谢谢您！", "polite")) == 1


def test_unknown_notices_are_left_alone() -> None:
    said: list[str] = []
    wellbeing = Wellbeing(lambda text, *a, **k: said.append(text), lambda: False)
    assert not wellbeing.deliver("weather", {})
    wellbeing.ended({"cooldown_id": "1"})
    assert len(said) == 1, "an end without its start is still said (the phone may have started late)"
