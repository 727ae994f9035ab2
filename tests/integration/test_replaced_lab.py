"""What the real Asterisk does when a second websocket opens on an app that already has one
(issue 13; dialer/engine/takeover.py, docs/faults.md): the first socket receives
``ApplicationReplaced`` and nothing more -- Asterisk does not close it (seen on the lab's Asterisk,
4 Dec: it still answers a ping), so a client does not even notice by a reconnection; the second one
owns the app and gets its events.

A dialer worker stalled past the heartbeat look has its app adopted by the lease holder exactly
this way; the fake Asterisk (tests/fakes/ari.py) does the same, checked on virtual time by
tests/unit/test_dialer_takeover_fake_ari.py. Lab on its own ports (slot "replaced", tests/lab.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from core.ari import AriClient
from core.settings import Settings
from tests.lab import lab_client, lab_ports, private_lab

pytestmark = pytest.mark.integration

PORTS = lab_ports("replaced")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("replaced") / "var", PORTS) as settings:
        yield settings


async def _listed(ari: AriClient, app: str) -> list[str]:
    return [a["name"] for a in await ari.applications() if a["name"] == app]


async def _two_sockets(settings: Settings) -> dict[str, Any]:
    """Open a second websocket on an app; what the first one receives, and whether it is still
    open afterwards (it answers a ping), are the facts -- waited on, not timed."""
    seen: dict[str, Any] = {}
    async with lab_client(settings) as ari:
        app = f"{ari.app}-replacedtest"
        url, auth = ari.events_url(app=app), ari._auth_header()  # the client's own address and login
        async with connect(url, additional_headers=auth) as first, asyncio.timeout(30):  # a hang guard
            # Asterisk says nothing when it has registered the app: asked until it is listed.
            while not (listed := await _listed(ari, app)):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            seen["listed_before"] = listed
            async with connect(url, additional_headers=auth) as second:
                messages: list[dict[str, Any]] = []
                async for message in first:
                    messages.append(json.loads(message))
                    if messages[-1].get("type") == "ApplicationReplaced":
                        break
                seen["first_got"] = messages
                await (await first.ping())  # the replaced socket still answers: Asterisk left it open
                seen["first_state"] = first.state.name
                seen["second_state"] = second.state.name
                seen["listed_after"] = await _listed(ari, app)
    return seen


def test_a_second_websocket_replaces_the_first(lab: Settings) -> None:
    seen = asyncio.run(_two_sockets(lab))
    print("\nREPLACED", json.dumps(seen, default=str), flush=True)
    assert seen["listed_before"]
    kinds = [m.get("type") for m in seen["first_got"]]
    assert kinds == ["ApplicationReplaced"], seen
    assert seen["first_got"][0].get("application", "").endswith("-replacedtest")
    assert seen["first_state"] == "OPEN", "Asterisk leaves the replaced socket open"
    assert seen["second_state"] == "OPEN"
    assert seen["listed_after"]
