"""The softphone's help key (Alt+Z) and abusive-call key (F10): the server is asked about the call
the service put through, and what it answers is said (the cool-down, e.g. 您有5分钟休息时间)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from softphone.keymap import key_table
from softphone.phone import ActionError, Softphone
from tests.unit.test_softphone_transfers import said, scenario, served_call


class HelpServer:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.asked.append((request.method, request.url.path, body))
        if request.url.path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        if request.url.path == "/api/agents/me/help":
            return httpx.Response(
                201, json={"id": 1, "message": "Help asked for: a supervisor has been alerted."}
            )
        if request.url.path == "/api/agents/me/calls/att-9/abusive":
            return httpx.Response(
                200,
                json={
                    "ended": True,
                    "minutes": 5,
                    "message": "You have 5 minutes' rest. No call will be offered until 10:05.",
                },
            )
        if request.url.path == "/api/agents/me/dispositions":
            return httpx.Response(200, json=[])
        return httpx.Response(404, json={"detail": "not here"})


def test_help_then_abusive_on_a_served_call() -> None:
    server = HelpServer()

    async def body(phone: Softphone, engine: Any, _server: Any) -> None:
        with pytest.raises(ActionError):
            await phone.act("ask_help")  # no call yet
        await served_call(phone, engine)
        await phone.act("ask_help")
        await phone.act("abusive")
        await asyncio.sleep(0.1)

    phone, _engine, _ = scenario(body, server)  # type: ignore[arg-type]
    words = said(phone)
    assert "Help asked for: a supervisor has been alerted." in words
    assert "You have 5 minutes' rest. No call will be offered until 10:05." in words
    assert ("POST", "/api/agents/me/help", {"call_ref": "att-9"}) in server.asked
    assert ("POST", "/api/agents/me/calls/att-9/abusive", None) in server.asked
    assert key_table()["Alt+z"] == "ask_help" and key_table()["F10"] == "abusive"
