"""What the real Asterisk does when a second websocket opens on an app that already has one
(issue 13; dialer/engine/takeover.py, docs/faults.md): the first socket receives
``ApplicationReplaced`` and nothing more -- Asterisk does not close it (seen on the lab's Asterisk,
4 Dec: still open 5 s later), so a client does not even notice by a reconnection; the second one
owns the app and gets its events.

A dialer worker stalled past the heartbeat look has its app adopted by the lease holder exactly
this way; the fake Asterisk (tests/fakes/ari.py) does the same, checked on virtual time by
tests/unit/test_dialer_replaced_fake_ari.py. Lab on its own ports (slot "replaced", tests/lab.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from core.settings import Settings
from tests.lab import lab_client, lab_ports, private_lab

pytestmark = pytest.mark.integration

PORTS = lab_ports("replaced")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("replaced") / "var", PORTS) as settings:
        yield settings


async def _two_sockets(settings: Settings, tmp: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with lab_client(settings) as ari:
        app = f"{ari.app}-replacedtest"
        url = ari.events_url(app=app)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{ari.user}:{ari._password}".encode()).decode()}
        async with connect(url, additional_headers=auth) as first:
            await asyncio.sleep(0.3)
            seen["listed_before"] = [a["name"] for a in await ari.applications() if a["name"] == app]
            async with connect(url, additional_headers=auth) as second:
                messages: list[dict[str, Any]] = []
                try:
                    async with asyncio.timeout(5.0):
                        async for message in first:
                            messages.append(json.loads(message))
                except TimeoutError:
                    seen["first_closed"] = False
                else:
                    seen["first_closed"] = True
                    seen["close_code"] = first.close_code
                seen["first_got"] = messages
                seen["second_open"] = second.state.name
                seen["listed_after"] = [a["name"] for a in await ari.applications() if a["name"] == app]
    return seen


def test_a_second_websocket_replaces_the_first(lab: Settings, tmp_path: Path) -> None:
    seen = asyncio.run(_two_sockets(lab, tmp_path))
    print("\nREPLACED", json.dumps(seen, default=str), flush=True)
    assert seen["listed_before"]
    kinds = [m.get("type") for m in seen["first_got"]]
    assert kinds == ["ApplicationReplaced"], seen
    assert seen["first_got"][0].get("application", "").endswith("-replacedtest")
    assert seen["first_closed"] is False, "Asterisk leaves the replaced socket open, silent"
    assert seen["second_open"] == "OPEN"
    assert seen["listed_after"]
