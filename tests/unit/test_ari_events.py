"""core.ari.AriClient.events against a local websocket server that drops the connection."""

from __future__ import annotations

import asyncio
import json

import websockets

from core.ari import AriClient


async def test_events_reconnect_and_announce():
    connections = 0
    seen_paths: list[str] = []
    seen_auth: list[str | None] = []

    async def handler(ws):
        nonlocal connections
        connections += 1
        seen_paths.append(ws.request.path)
        seen_auth.append(ws.request.headers.get("Authorization"))
        await ws.send(json.dumps({"type": "StasisStart", "n": connections}))
        if connections == 1:
            await ws.close()  # Asterisk went away
            return
        await ws.wait_closed()

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ari = AriClient(f"http://127.0.0.1:{port}/ari", "warmline", "pw", "warmline")
        stream = ari.events(initial_backoff=0.05)
        got: list[dict[str, object]] = []
        async with asyncio.timeout(5):
            while len(got) < 4:
                got.append(await anext(stream))
        await stream.aclose()
        await ari.aclose()

    assert [e["type"] for e in got] == [
        "WarmlineConnected",
        "StasisStart",
        "WarmlineReconnected",
        "StasisStart",
    ]
    assert [e.get("n") for e in got if e["type"] == "StasisStart"] == [1, 2]
    assert seen_paths[0] == "/ari/events?app=warmline"
    assert seen_auth[0] is not None and seen_auth[0].startswith("Basic ")
