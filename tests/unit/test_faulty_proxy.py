"""The test proxy that makes the line to ARI worse (tests/utils/faulty_proxy.py): it forwards,
holds bytes while stalled (none lost), drops every connection, refuses new ones. Against an echo
server on loopback."""

from __future__ import annotations

import asyncio

from tests.utils.faulty_proxy import FaultyProxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def scenario() -> dict[str, object]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen: dict[str, object] = {}
    async with FaultyProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"hello")
        seen["forwarded"] = await asyncio.wait_for(reader.readexactly(5), 10)
        proxy.stall()
        writer.write(b"late")
        try:
            await asyncio.wait_for(reader.readexactly(4), 0.3)
            seen["held"] = False
        except TimeoutError:
            seen["held"] = True
        proxy.flow()
        seen["delivered_late"] = await asyncio.wait_for(reader.readexactly(4), 10)
        proxy.latency = 0.05
        writer.write(b"slow")
        seen["with_latency"] = await asyncio.wait_for(reader.readexactly(4), 10)
        proxy.latency = 0.0
        proxy.drop()
        seen["dropped_eof"] = await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        proxy.refuse = True
        r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        seen["refused_eof"] = await asyncio.wait_for(r2.read(), 10) == b""
        w2.close()
        seen["connections"], seen["dropped"] = proxy.connections, proxy.dropped
    server.close()
    await server.wait_closed()
    return seen


def test_forward_stall_drop_refuse() -> None:
    seen = asyncio.run(scenario())
    assert seen["forwarded"] == b"hello"
    assert seen["held"] is True and seen["delivered_late"] == b"late", "held while stalled, then delivered"
    assert seen["with_latency"] == b"slow"
    assert seen["dropped_eof"] is True and seen["refused_eof"] is True
    assert seen["connections"] == 1 and seen["dropped"] == 1
