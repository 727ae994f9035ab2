"""The softphone's practice key (F3, softphone.phone.do_practice) with a stub server: each press
asks for the next of the server's scenarios in turn and says the server's answer; refused without
the server, during a call, and when the server says no. In the key map, F3 is bound and documented."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.i18n import use_locale
from softphone.fake import FakeEngine
from softphone.keymap import key_table
from softphone.phone import ActionError, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ProvisioningError

SCENARIOS = [
    {"name": "angry_caller", "title": "An angry caller"},
    {"name": "confused_elder", "title": "A confused elder"},
]


class Server:
    signed_in = True

    def __init__(self, refuse: bool = False) -> None:
        self.started: list[str] = []
        self.refuse = refuse

    async def practice_scenarios(self) -> list[dict[str, Any]]:
        return SCENARIOS

    async def start_practice(self, scenario: str) -> dict[str, Any]:
        if self.refuse:
            raise ProvisioningError("a practice call is already ringing", status=409)
        self.started.append(scenario)
        return {"message": "Your phone is ringing."}


def test_each_press_takes_the_next_scenario() -> None:
    async def main() -> tuple[list[str], list[str]]:
        phone = Softphone(FakeEngine(), AgentStatus("mei", NullPublisher()), server=Server())  # type: ignore[arg-type]
        for _ in range(3):
            await phone.act("practice")
        assert isinstance(phone.server, Server)
        return phone.server.started, [a.text for a in phone.announcements]

    with use_locale("en"):
        started, said = asyncio.run(main())
    assert started == ["angry_caller", "confused_elder", "angry_caller"]
    assert said[0] == "Practice call: An angry caller. Your phone is ringing."


def test_the_key_refuses_without_server_during_a_call_and_when_the_server_says_no() -> None:
    async def main() -> list[str]:
        errors: list[str] = []
        engine = FakeEngine()
        alone = Softphone(engine, AgentStatus("mei", NullPublisher()))
        refused = Softphone(FakeEngine(), AgentStatus("mei", NullPublisher()), server=Server(refuse=True))  # type: ignore[arg-type]
        busy = Softphone(engine, AgentStatus("mei", NullPublisher()), server=Server())  # type: ignore[arg-type]
        await busy.start()
        engine.ring("warmline", {"attempt": "att-1"})
        await asyncio.sleep(0.05)
        for phone in (alone, refused, busy):
            with pytest.raises(ActionError) as err:
                await phone.act("practice")
            errors.append(str(err.value))
        await busy.close()
        return errors

    with use_locale("en"):
        errors = asyncio.run(main())
    assert errors[0] == "Practice calls need the call centre's server."
    assert errors[1].startswith("No practice call:") and "already ringing" in errors[1]
    assert errors[2] == "Finish the call before a practice call."
    assert key_table()["F3"] == "practice"
