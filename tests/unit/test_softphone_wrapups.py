"""The softphone's wrap-ups: its outbox keeps what the server could not take and retries until the
server has it (a fake server that fails, then succeeds), and the phone offers the campaign's
choices and sends their codes. No clock is waited on: the outbox's sleep is the test's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from softphone.account import SipAccountSettings
from softphone.fake import FakeEngine
from softphone.outbox import Delivery, WrapUpOutbox
from softphone.phone import ActionError, PhoneOptions, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from tests.utils import until

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

ATTEMPT = "6f0c1c2e-8d7b-4a0e-9b53-0d6a2f1e4c11"
RECORD = {"call_ref": ATTEMPT, "disposition": "confirmed", "callback_at": None, "note": None}
UNREACHABLE = 0  # in a FakeServer's script: the connection fails


class FakeServer:
    """The warmline API as far as the softphone's wrap-ups go: replies to the wrap-up posts from a
    script of statuses (UNREACHABLE: it cannot be reached), then stores them."""

    def __init__(self, *script: int, dispositions: list[dict[str, Any]] | None = None) -> None:
        self.script = list(script)
        self.posts: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []
        self.dispositions = dispositions

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        if request.url.path == "/api/agents/me/dispositions":
            if self.dispositions is None:
                return httpx.Response(404, json={"detail": "no campaign"})
            return httpx.Response(200, json={"campaign": "c1", "dispositions": self.dispositions})
        assert request.url.path == "/api/agents/me/wrapup"
        body = json.loads(request.content)
        self.posts.append(body)
        step = self.script.pop(0) if self.script else 200
        if step == UNREACHABLE:
            raise httpx.ConnectError("connection refused", request=request)
        if step == 422:
            detail = [
                {"loc": ["body", "callback_at"], "msg": "a callback needs the time", "type": "value_error"}
            ]
            return httpx.Response(422, json={"detail": detail})
        if step >= 400:
            return httpx.Response(step, json={"detail": f"status {step}"})
        self.stored.append(body)
        return httpx.Response(200, json={"stored": True, "message": "The contact is finished."})

    def client(self) -> ServerClient:
        return ServerClient("http://warmline.test", transport=httpx.MockTransport(self.handle))


class Sleeps:
    """The outbox's sleep: notes the delay and lets the loop run on at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def settle(outbox: WrapUpOutbox, count: int) -> list[Delivery]:
    """Run the outbox's retries until they have settled `count` wrap-ups; those."""
    settled: list[Delivery] = []
    outbox.on_settled = settled.append
    task = asyncio.create_task(outbox.run())
    try:
        await until(lambda: len(settled) >= count, what=f"{count} wrap-ups settled")
    finally:
        task.cancel()
    return settled


async def test_a_wrapup_the_server_failed_is_retried_with_capped_backoff_until_stored(tmp_path: Path) -> None:
    server = FakeServer(UNREACHABLE, 503, UNREACHABLE, 502, 429)
    sleeps = Sleeps()
    outbox = WrapUpOutbox(server.client().post_wrapup, path=tmp_path / "out.jsonl", max_delay=4, sleep=sleeps)
    first = await outbox.submit(RECORD)
    assert first.outcome == "queued" and outbox.pending == [RECORD]
    [done] = await settle(outbox, 1)
    assert done.outcome == "stored" and done.response == {
        "stored": True,
        "message": "The contact is finished.",
    }
    assert sleeps.delays == [1, 2, 4, 4], "doubling, capped at max_delay"
    assert server.posts == [RECORD] * 6 and server.stored == [RECORD]
    assert WrapUpOutbox(server.client().post_wrapup, path=tmp_path / "out.jsonl").pending == []


async def test_wrapups_kept_in_the_file_are_sent_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "out.jsonl"
    down = FakeServer(*[UNREACHABLE] * 4)
    before = WrapUpOutbox(down.client().post_wrapup, path=path)
    second = RECORD | {"call_ref": "another", "disposition": "callback", "callback_at": "2026-12-01T10:30:00"}
    assert (await before.submit(RECORD)).outcome == "queued"
    assert (await before.submit(second)).outcome == "queued"
    with path.open("a", encoding="utf-8") as f:
        f.write('{"add": "torn')  # the phone died in the middle of a line
    server = FakeServer()
    after = WrapUpOutbox(server.client().post_wrapup, path=path, sleep=Sleeps())
    assert after.pending == [RECORD, second]
    settled = await settle(after, 2)
    assert [d.outcome for d in settled] == ["stored", "stored"] and server.stored == [RECORD, second]


async def test_without_a_folder_wrapups_are_kept_in_memory_and_retried() -> None:
    server = FakeServer(503)
    outbox = WrapUpOutbox(server.client().post_wrapup, sleep=Sleeps())
    assert not outbox.durable and (await outbox.submit(RECORD)).outcome == "queued"
    await settle(outbox, 1)
    assert server.stored == [RECORD]


@pytest.mark.parametrize(
    ("status", "kept"), [(403, False), (404, False), (409, False), (422, False), (401, True)]
)
async def test_what_the_server_refuses_for_good_is_dropped(status: int, kept: bool) -> None:
    outbox = WrapUpOutbox(FakeServer(status).client().post_wrapup, sleep=Sleeps())
    delivery = await outbox.submit(RECORD)
    assert delivery.outcome == ("queued" if kept else "refused") and bool(outbox.pending) == kept
    if status == 422:
        assert delivery.reason == "callback_at: a callback needs the time"


# ------------------------------------------------------------------------------ the phone


async def phone_with(server: FakeServer, outbox: WrapUpOutbox | None = None) -> tuple[Softphone, FakeEngine]:
    client = server.client()
    await client.login("mei", "pw")
    outbox = outbox or WrapUpOutbox(client.post_wrapup, sleep=Sleeps())
    engine = FakeEngine()
    phone = Softphone(
        engine,
        AgentStatus("mei", NullPublisher()),
        server=client,
        options=PhoneOptions(quality_every=3600),
        on_wrapup=outbox.submit,
    )
    await phone.start(SipAccountSettings("mei", "pw", "sip:127.0.0.1:5060"))
    return phone, engine


async def talk_and_hang_up(
    phone: Softphone, engine: FakeEngine, headers: dict[str, str], *, learnt: str | None = None
) -> None:
    cid = engine.ring("13800138000", headers)
    await until(lambda: cid in phone.calls)
    if learnt is not None:  # the campaign's choices are asked for while the call rings
        await until(lambda: learnt in phone.campaign_choices)
    await phone.act("answer")
    await until(lambda: phone.calls[cid].status == "connected")
    engine.remote_hangup(cid)
    await until(lambda: phone.wrapup is not None)


async def test_the_phone_offers_the_campaigns_choices_and_sends_their_codes() -> None:
    server = FakeServer(
        dispositions=[
            {"key": "1", "code": "reached", "label": "已回访", "label_en": "Reached", "action": "done"},
            {"key": "2", "code": "call_back", "label": "约定回拨", "label_en": "", "action": "callback"},
        ]
    )
    phone, engine = await phone_with(server)
    await talk_and_hang_up(phone, engine, {"attempt": ATTEMPT, "campaign": "c1"}, learnt="c1")
    assert phone.view()["dispositions"] == {
        "1": ["reached", "Reached", "done", "已回访"],
        "2": ["call_back", "约定回拨", "callback", "约定回拨"],
    }
    with pytest.raises(ActionError, match="keys 1 to 2"):
        await phone.act("wrapup", disposition="3")
    with pytest.raises(ActionError, match="needs a date and time"):
        await phone.act("wrapup", disposition="2")
    await phone.act("wrapup", disposition="1")  # the number key
    assert server.stored == [
        {"call_ref": ATTEMPT, "disposition": "reached", "callback_at": None, "note": None, "talk_seconds": 0}
    ]
    assert phone.announcements[-1].text == (
        "Saved: Reached. The contact is finished. You are available for calls."
    )
    await phone.close()


async def test_a_wrapup_the_server_cannot_take_now_is_saved_and_said_so() -> None:
    server = FakeServer(UNREACHABLE)  # the campaign's choices are unknown too: the defaults
    phone, engine = await phone_with(server)
    await talk_and_hang_up(phone, engine, {"attempt": ATTEMPT, "campaign": "c1"})
    await phone.act("wrapup", disposition="callback", callback_at="2026-12-01T10:30")
    assert (
        server.posts[0]["disposition"] == "callback"
        and server.posts[0]["callback_at"] == "2026-12-01T10:30:00"
    )
    said = phone.announcements[-1].text
    assert said.startswith("Saved: Callback requested. Callback on 2026-12-01 at 10:30.")
    assert "kept and sent when it is back" in said and phone.wrapup is None
    await phone.close()


async def test_a_wrapup_the_server_finds_invalid_stays_open_for_the_agent() -> None:
    server = FakeServer(422)
    phone, engine = await phone_with(server)
    await talk_and_hang_up(phone, engine, {"attempt": ATTEMPT})
    with pytest.raises(ActionError, match="callback_at: a callback needs the time"):
        await phone.act("wrapup", disposition="7")
    assert phone.wrapup is not None, "still open: the agent can put it right"
    await phone.act("wrapup", disposition="7")
    assert server.stored[0]["disposition"] == "opt_out"
    await phone.close()


async def test_a_headless_phone_saves_a_plain_done_never_an_action() -> None:
    server = FakeServer(
        dispositions=[
            {"key": "1", "code": "opt_out", "label": "要求不再来电", "label_en": "", "action": "opt_out"},
            {"key": "2", "code": "well", "label": "老人安好", "label_en": "Well", "action": "done"},
        ]
    )
    client = server.client()
    await client.login("mei", "pw")
    engine = FakeEngine()
    phone = Softphone(
        engine,
        AgentStatus("mei", NullPublisher()),
        server=client,
        options=PhoneOptions(auto_answer=True, auto_wrapup=True, quality_every=3600),
        on_wrapup=WrapUpOutbox(client.post_wrapup, sleep=Sleeps()).submit,
    )
    await phone.start(SipAccountSettings("mei", "pw", "sip:127.0.0.1:5060"))
    cid = engine.ring("13800138000", {"attempt": ATTEMPT, "campaign": "c1"})
    await until(
        lambda: (
            "c1" in phone.campaign_choices and cid in phone.calls and phone.calls[cid].status == "connected"
        )
    )
    engine.remote_hangup(cid)
    await until(lambda: bool(server.stored) and phone.status.state == "available")
    assert [r["disposition"] for r in server.stored] == ["well"]
    await phone.close()
