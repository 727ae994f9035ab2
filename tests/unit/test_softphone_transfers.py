"""The softphone's side of transfers, against a server stand-in (httpx's mock transport that plays
the service's transfer API, its states moving as the service would move them) and the FakeEngine:
the chooser, consult then join or go back, blind, refusals said as the server words them, no
wrap-up on this phone once a colleague has the caller, and SIP REFER kept for calls the service
did not put through."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from core.i18n import use_locale
from softphone.fake import FakeEngine
from softphone.phone import ActionError, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from tests.fakes.clock import run_virtual

SERVED = {"attempt": "att-9", "campaign": "w48", "field-name": "%E7%8E%8B%E5%A5%B6%E5%A5%B6"}
MESSAGES = {
    "requested": "Transfer to lin asked for.",
    "ringing": "Calling lin; the caller is on hold.",
    "consulting": "You are talking to lin; the caller is on hold. Join or go back.",
    "completed": "The transfer is complete: lin has the caller.",
    "cancelled": "Consultation ended; you are back with the caller.",
    "failed": "lin is busy.",
}


class Server:
    """The transfer API as the service answers it; the test moves the transfer's state."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []
        self.state = "requested"
        self.result: str | None = None
        self.refuse: dict[str, Any] | None = None
        self.mode = "attended"

    def transfer(self) -> dict[str, Any]:
        done = self.state in ("completed", "cancelled", "failed")
        return {
            "id": "x1", "call_ref": "att-9", "from_agent": "mei", "kind": "agent", "mode": self.mode,
            "target": "lin", "to_agent": "lin" if self.state == "completed" else None, "state": self.state,
            "result": self.result, "wrap_up_by": ("lin" if self.state == "completed" else "mei") if done else None,
            "message": MESSAGES[self.state],
        }  # fmt: skip

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.asked.append((request.method, path, body))
        if path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        if path == "/api/agents/me/transfer-targets":
            return httpx.Response(
                200,
                json={
                    "colleagues": [
                        {"name": "lin", "display_name": "林", "state": "available", "available": True},
                        {"name": "bo", "display_name": "bo", "state": "break", "available": False},
                    ],
                    "queues": [{"skill": "welfare", "available": 1}],
                },
            )
        if path == "/api/agents/me/transfers" and request.method == "POST":
            if self.refuse is not None:
                return httpx.Response(409, json={"detail": self.refuse})
            self.mode = (body or {}).get("mode", "attended")
            return httpx.Response(202, json=self.transfer())
        if path == "/api/agents/me/transfers/x1":
            return httpx.Response(200, json=self.transfer())
        if path.startswith("/api/agents/me/transfers/x1/"):
            return httpx.Response(202, json=self.transfer())
        if path == "/api/agents/me/dispositions":
            return httpx.Response(200, json=[])
        return httpx.Response(404, json={"detail": "not here"})


def scenario(body: Any, server: Server | None = None) -> tuple[Softphone, FakeEngine, Server]:
    server = server or Server()
    engine = FakeEngine()

    async def main() -> Softphone:
        client = ServerClient("http://warmline.test", transport=httpx.MockTransport(server))
        await client.login("mei", "pw")
        phone = Softphone(engine, AgentStatus("mei", NullPublisher()), server=client)
        await phone.start()
        await phone.status.change("available")
        try:
            await body(phone, engine, server)
        finally:
            await phone.close()
        return phone

    with use_locale("en"):
        return run_virtual(main()), engine, server


async def served_call(phone: Softphone, engine: FakeEngine) -> int:
    call = engine.ring("warmline", SERVED)
    await asyncio.sleep(0.1)
    await phone.act("answer")
    await asyncio.sleep(0.1)
    assert phone.calls[call].status == "connected"
    return call


def said(phone: Softphone) -> list[str]:
    return [a.text for a in phone.announcements]


def test_consult_a_colleague_then_join_the_phone_opens_no_wrap_up() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        call = await served_call(phone, engine)
        await phone.act("consult")  # Alt+C without a target: the chooser
        chooser = phone.view()["transfer"]["chooser"]
        assert chooser["mode"] == "attended" and [c["name"] for c in chooser["colleagues"]] == ["lin", "bo"]
        assert phone.view()["transfer"]["server"] is True
        await phone.act("transfer_choose", kind="agent", target="lin", mode="attended")
        server.state = "consulting"
        await asyncio.sleep(1)
        assert phone.transfers.current is not None and phone.transfers.current.state == "consulting"
        await phone.act("complete")  # Alt+J
        server.state, server.result = "completed", "answered"
        engine.remote_hangup(call)  # the service ends mei's leg as it joins the caller to lin
        await asyncio.sleep(2)
        assert phone.wrapup is None, "the wrap-up is lin's"
        assert phone.status.state == "available"

    phone, engine, server = scenario(body)
    words = said(phone)
    assert any(w.startswith("Transfer: 1 colleague, 2 queue, 3 outside number") and "lin" in w for w in words)
    assert MESSAGES["consulting"] in words and "Handing the caller over to lin." in words
    assert "Caller handed over to lin; the wrap-up is theirs. You are available." in words
    assert ("POST", "/api/agents/me/transfers", {"call_ref": "att-9", "kind": "agent", "target": "lin",
            "mode": "attended"}) in server.asked  # fmt: skip
    assert ("POST", "/api/agents/me/transfers/x1/complete", None) in server.asked
    assert engine.transfers == [], "no SIP REFER: the service moves the legs"


def test_escape_goes_back_to_the_caller_and_the_wrap_up_stays_mine() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        call = await served_call(phone, engine)
        await phone.act("transfer_choose", kind="agent", target="lin", mode="attended")
        server.state = "consulting"
        await asyncio.sleep(1)
        await phone.act("cancel")  # Escape
        server.state, server.result = "cancelled", "cancelled"
        await asyncio.sleep(1)
        engine.remote_hangup(call)
        await asyncio.sleep(1)
        assert phone.wrapup is not None and phone.wrapup.call_ref == "att-9"

    phone, _engine, server = scenario(body)
    assert ("POST", "/api/agents/me/transfers/x1/cancel", None) in server.asked
    assert "Going back to the caller." in said(phone) and MESSAGES["cancelled"] in said(phone)


def test_a_failed_transfer_is_said_assertively() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        await served_call(phone, engine)
        await phone.act("transfer", target="lin")  # blind, typed
        server.state, server.result = "failed", "busy"
        await asyncio.sleep(1)

    phone, _engine, server = scenario(body)
    assert any(a.text == "lin is busy." and a.politeness == "assertive" for a in phone.announcements)
    assert ("POST", "/api/agents/me/transfers", {"call_ref": "att-9", "kind": "agent", "target": "lin",
            "mode": "blind"}) in server.asked  # fmt: skip


def test_a_refusal_is_said_as_the_server_words_it() -> None:
    server = Server()
    server.refuse = {"code": "target_busy", "message": "lin is not available now (on_call)."}

    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        await served_call(phone, engine)
        with pytest.raises(ActionError, match="lin is not available now"):
            await phone.act("transfer_choose", kind="agent", target="lin")
        with pytest.raises(ActionError, match="No transfer is under way"):
            await phone.act("transfer_complete")

    scenario(body, server)


def test_a_call_the_service_did_not_put_through_keeps_sip_transfer() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        call = engine.ring("1002", {})
        await asyncio.sleep(0.1)
        await phone.act("answer")
        await asyncio.sleep(0.1)
        assert phone.view()["transfer"]["server"] is False
        with pytest.raises(ActionError):
            await phone.act("transfer_open")
        await phone.act("transfer", target="1003")
        assert engine.transfers == [(call, "1003")], "SIP REFER, as before"

    scenario(body)


def test_the_chooser_speaks_chinese_by_default() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        await served_call(phone, engine)
        with use_locale("zh-CN"):
            await phone.act("transfer_open")
            view = phone.view()["transfer"]
        assert view["kinds"]["1"] == ["agent", "同事"] and view["modes"]["attended"] == "先咨询"

    phone, _engine, _server = scenario(body)
    assert any(w.startswith("转接：") for w in said(phone))


@pytest.mark.parametrize(
    ("state", "to_agent", "wraps_up"), [("cancelled", None, False), ("completed", "mei", True)]
)
def test_the_consulted_colleague_wraps_up_only_a_caller_they_got(state: str, to_agent: str | None,
                                                                 wraps_up: bool) -> None:  # fmt: skip
    """mei here is the colleague: rung for lin's consult (X-Warmline-Transfer-Id)."""
    server = Server()
    looks: list[str] = []

    def transfer() -> dict[str, Any]:
        # the leg ends a moment before the service writes how the transfer ended: asked again
        looks.append(state)
        now = "consulting" if len(looks) == 1 else state
        return {"id": "x1", "call_ref": "att-9", "from_agent": "lin", "kind": "agent", "mode": "attended",
                "target": "mei", "to_agent": to_agent, "state": now, "result": None, "wrap_up_by": None,
                "message": ""}  # fmt: skip

    server.transfer = transfer  # type: ignore[method-assign]

    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        call = engine.ring("warmline", {**SERVED, "transfer-id": "x1", "transfer-from": "lin"})
        await asyncio.sleep(0.1)
        await phone.act("answer")
        await asyncio.sleep(0.1)
        engine.remote_hangup(call)
        await asyncio.sleep(1)
        assert (phone.wrapup is not None) is wraps_up
        if not wraps_up:
            assert phone.status.state == "available"

    phone, _engine, _server = scenario(body, server)
    assert len(looks) == 2, "asked again while the transfer was still under way"
    assert any("Call handed over by lin." in w for w in said(phone))
    if not wraps_up:
        assert "Consultation with lin ended; the caller stays with them." in said(phone)


def test_after_a_blind_transfer_still_ringing_the_caller_is_no_longer_mine() -> None:
    async def body(phone: Softphone, engine: FakeEngine, server: Server) -> None:
        call = await served_call(phone, engine)
        await phone.act("transfer", target="lin")  # blind: the service ends mei's leg at once
        server.state = "ringing"
        engine.remote_hangup(call)
        await asyncio.sleep(4)
        assert phone.wrapup is None and phone.status.state == "available"

    phone, _engine, _server = scenario(body)
    assert "Caller handed over to lin; the wrap-up is theirs. You are available." in said(phone)
