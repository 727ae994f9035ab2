"""The softphone's side of calls the agent places, against a server stand-in (httpx's mock
transport) and the FakeEngine, in English: what is said, which call is answered by itself, what a
refusal sounds like, and the skip reasons the server knows."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from core.i18n import use_locale
from dialer.agent_dial.service import SKIP_REASONS as SERVER_REASONS
from softphone import placed_calls as desk
from softphone.fake import FakeEngine
from softphone.phone import ActionError, Softphone
from softphone.placed_calls import SKIP_REASONS, spoken_number
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from tests.fakes.clock import run_virtual

CONTACT = {
    "contact_id": 7, "campaign": "w48", "name": "王奶奶", "phone": "138****8009", "fields": {"社区": "朝阳"},
    "attempts": 0, "last_outcome": None, "reserved_until": "2026-03-02T02:03:00+00:00",
    "timezone": "Asia/Shanghai", "callback_at": None,
}  # fmt: skip


class Server:
    """What the warmline API answers, and what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []
        self.refuse_dial: dict[str, Any] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.asked.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        if path == "/api/agents/me/preview":
            return httpx.Response(200, json={"contact": CONTACT, "message": "reserved"})
        if path == "/api/agents/me/preview/skip":
            return httpx.Response(200, json={"skipped": True})
        if path == "/api/agents/me/callbacks":
            return httpx.Response(
                200,
                json=[
                    {**CONTACT, "due": True, "kept_until": "x", "callback_at": "2026-03-02T02:02:00+00:00"}
                ],
            )
        if path == "/api/agents/me/dial":
            if self.refuse_dial is not None:
                return httpx.Response(409, json={"detail": self.refuse_dial})
            return httpx.Response(202, json={"call_ref": "att-1", "name": "王奶奶", "phone": "138****8009"})
        return httpx.Response(404, json={"detail": "not here"})


def scenario(
    body: Any, server: Server | None = None, answer: Any = None
) -> tuple[Softphone, FakeEngine, Server]:
    """`answer(request, engine, server)`, when given, answers instead of `server` (it may wait)."""
    server = server or Server()
    engine = FakeEngine()

    async def main() -> Softphone:
        handler = server if answer is None else lambda request: answer(request, engine, server)
        client = ServerClient("http://warmline.test", transport=httpx.MockTransport(handler))
        await client.login("mei", "pw")
        phone = Softphone(engine, AgentStatus("mei", NullPublisher()), server=client)
        await phone.start()
        try:
            with use_locale("en"):
                await body(phone, engine)
        finally:
            await phone.close()
        return phone

    with use_locale("en"):
        return run_virtual(main()), engine, server


def said(phone: Softphone) -> list[str]:
    return [a.text for a in phone.announcements]


def test_the_masked_number_is_read_digit_by_digit() -> None:
    with use_locale("en"):
        assert spoken_number("138****8009") == "1 3 8, 4 hidden digits, 8 0 0 9"
        assert spoken_number("+165****0000") == "plus, 1 6 5, 4 hidden digits, 0 0 0 0"


def test_the_phone_offers_the_servers_skip_reasons_in_its_order() -> None:
    assert list(SKIP_REASONS) == list(SERVER_REASONS)
    assert SKIP_REASONS == SERVER_REASONS


def test_preview_then_call_answers_only_its_own_leg() -> None:
    async def body(phone: Softphone, engine: FakeEngine) -> None:
        await phone.act("preview")
        await phone.act("preview_call")
        other = engine.ring("13800138000", {"attempt": "someone-else", "placed": "1"})
        await asyncio.sleep(0.1)
        mine = engine.ring("warmline", {"attempt": "att-1", "placed": "1", "campaign": "w48"})
        await asyncio.sleep(0.1)
        assert f"answer {mine} 200" in engine.log and f"answer {other} 200" not in engine.log
        assert phone.calls[mine].direction == "out" and phone.calls[mine].ref == "att-1"

    phone, _, server = scenario(body)
    words = said(phone)
    assert any(
        w.startswith("Next contact: 王奶奶, campaign w48. Number 1 3 8, 4 hidden digits, 8 0 0 9.")
        for w in words
    )
    assert "Calling 王奶奶. Your phone rings first and answers by itself." in words
    assert "Dialling 王奶奶; you will hear it ring." in words
    assert ("POST", "/api/agents/me/dial", {"contact_id": 7}) in server.asked


def test_the_agents_leg_ringing_before_the_servers_answer_is_still_answered_by_itself() -> None:
    """The dialer takes a request the moment it is stored: the agent's leg can ring before the
    answer with the call's reference reaches the phone."""
    rang: list[int] = []

    async def answer(request: httpx.Request, engine: FakeEngine, server: Server) -> httpx.Response:
        if request.url.path == "/api/agents/me/dial":
            rang.append(engine.ring("warmline", {"attempt": "att-1", "placed": "1"}))
            await asyncio.sleep(0.5)  # the answer is slower than the ring
        return server(request)

    async def body(phone: Softphone, engine: FakeEngine) -> None:
        await phone.act("preview")
        await phone.act("preview_call")
        await asyncio.sleep(0.1)
        assert rang and f"answer {rang[0]} 200" in engine.log
        assert phone.calls[rang[0]].direction == "out" and phone.calls[rang[0]].ref == "att-1"

    scenario(body, answer=answer)


def test_a_refusal_is_said_as_the_server_words_it() -> None:
    server = Server()
    server.refuse_dial = {
        "code": "do_not_call",
        "message": "138****8009 is on the do-not-call list; it must not be called.",
    }

    async def body(phone: Softphone, engine: FakeEngine) -> None:
        await phone.act("preview")
        with pytest.raises(ActionError, match="do-not-call list"):
            await phone.act("preview_call")
        assert phone.placed.placing is None

    scenario(body, server)


def test_a_call_that_never_rings_is_said_after_a_while() -> None:
    async def body(phone: Softphone, engine: FakeEngine) -> None:
        await phone.act("preview")
        await phone.act("preview_call")
        await asyncio.sleep(desk.PLACING_WAIT + 1)
        assert phone.placed.placing is None

    phone, _, _ = scenario(body)
    assert "The call did not come through; try again." in said(phone)


def test_skip_by_number_key_sends_the_code_and_callbacks_are_said() -> None:
    async def body(phone: Softphone, engine: FakeEngine) -> None:
        with pytest.raises(ActionError, match="no contact to skip"):
            await phone.act("preview_skip", reason="1")
        await phone.act("preview")
        await phone.act("preview_skip", reason="3", note="neighbour")
        assert phone.placed.preview is None
        await phone.act("callbacks")
        await phone.act("callback_call", contact_id="7")
        assert phone.placed.placing is not None

    phone, _, server = scenario(body)
    assert (
        "POST",
        "/api/agents/me/preview/skip",
        {"contact_id": 7, "reason": "known", "note": "neighbour"},
    ) in server.asked
    words = said(phone)
    assert "Skipped: I know this person. Press Alt+N for the next contact." in words
    assert any(
        w.startswith("1 callbacks kept for you, 1 due now. First: 王奶奶, due 2026-03-02 10:02.")
        for w in words
    )
    view = phone.view()["placed"]
    assert view["callbacks"][0]["callback_local"] == "2026-03-02 10:02" and view["placing"] == "王奶奶"
