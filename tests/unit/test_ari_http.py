"""core.ari_http against a local HTTP/1.1 server: keep-alive, the server closing idle connections,
chunked bodies, and failures named as the dialer tells them apart (ConnectError: never sent)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from core.ari import AriClient, AriError
from core.ari_http import AriHttp, AriHttpError

Reply = Callable[[str, bytes], Awaitable[bytes | None]]  # request line, body -> raw response (None: hang)


def response(status: int, body: bytes = b"", *, close: bool = False, chunked: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    if close:
        head += "Connection: close\r\n"
    if chunked:
        half = len(body) // 2
        chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:]) if p)
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@asynccontextmanager
async def server(reply: Reply) -> AsyncIterator[tuple[str, list[str], list[int]]]:
    """A server answering each request with `reply`; yields its base URL, the request heads seen
    and, per request, the number of the connection it came on."""
    heads: list[str] = []
    conns: list[int] = []
    opened = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        mine = opened
        try:
            while head := (await reader.readuntil(b"\r\n\r\n")).decode():
                length = next(
                    (
                        int(line.split(":")[1])
                        for line in head.split("\r\n")
                        if line.lower().startswith("content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                heads.append(head)
                conns.append(mine)
                raw = await reply(head.split("\r\n")[0], body)
                if raw is None:
                    await asyncio.sleep(3600)
                writer.write(raw or b"")
                await writer.drain()
                if b"Connection: close" in (raw or b""):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/ari", heads, conns
    finally:
        srv.close()


async def test_requests_share_one_connection_and_carry_auth_and_json() -> None:
    async def reply(line: str, body: bytes) -> bytes:
        return response(200, json.dumps({"line": line, "body": body.decode()}).encode())

    async with server(reply) as (url, heads, conns):
        ari = AriClient(url, "warmline", "s3cret", "warmline")
        first = await ari.originate("Local/123@lab-pstn", channel_id="a-1", variables={"X": "中"})
        await ari.hangup("a-1")
        await ari.aclose()
    assert first["line"].startswith("POST /ari/channels?endpoint=Local%2F123%40lab-pstn&channelId=a-1")
    assert json.loads(first["body"]) == {"variables": {"X": "中"}}
    assert heads[1].startswith("DELETE /ari/channels/a-1?reason=normal HTTP/1.1")
    assert "Authorization: Basic d2FybWxpbmU6czNjcmV0" in heads[0]
    assert conns == [1, 1], "kept alive: the second request reuses the first connection"


async def test_errors_chunked_bodies_and_a_connection_the_server_closed() -> None:
    answers = iter(
        [
            response(404, b'{"message": "Channel not found"}', close=True),
            response(200, b'[{"id": "c1"}, {"id": "c2"}]', chunked=True),
            response(204),
        ]
    )

    async def reply(line: str, body: bytes) -> bytes:
        return next(answers)

    async with server(reply) as (url, _heads, conns):
        ari = AriClient(url, "u", "p", "warmline")
        with pytest.raises(AriError) as lost:
            await ari.get_channel("gone")
        channels = await ari.channels()
        assert await ari.request("POST", "/channels/c1/answer") is None
        await ari.aclose()
    assert (lost.value.status, lost.value.message) == (404, "Channel not found")
    assert [c["id"] for c in channels] == ["c1", "c2"]
    assert conns == [1, 2, 2], "a closed connection is not used again"


async def test_failures_say_whether_the_request_was_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    refused = AriHttp(f"http://127.0.0.1:{port}/ari", "u", "p", timeout=1.0)
    with pytest.raises(AriHttpError) as never_sent:
        await refused.request("POST", "/channels")
    assert never_sent.value.kind == "ConnectError"

    async def hang(line: str, body: bytes) -> None:
        return None

    async with server(hang) as (url, _heads, _conns):
        ari = AriClient(url, "u", "p", "warmline", timeout=0.2)
        with pytest.raises(AriError) as lost:
            await ari.originate("Local/1@x", channel_id="a-2")
        await ari.aclose()
    assert lost.value.status == 0 and lost.value.message.startswith("ReadTimeout")
