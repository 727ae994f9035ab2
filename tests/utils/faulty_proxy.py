"""A small asyncio TCP proxy that misbehaves on purpose, between the dialer and ARI (or anything).

It listens on loopback and forwards every connection to one target, and the test makes the line
worse while it runs:

- `latency`: seconds added before each chunk is passed on (both directions);
- `stall()` / `flow()`: hold every byte (nothing lost) until the flow resumes -- a request sent
  during a stall reaches the server late, after its client may have timed out;
- `drop()`: close every open connection at once (HTTP keep-alive and the events websocket alike);
- `refuse`: while true, new connections are closed as soon as they are accepted.

Counters (`connections`, `dropped`, `chunks`) let a test say what it did.

    async with FaultyProxy("127.0.0.1", ari_port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/ari"
        proxy.latency = 0.3
        proxy.stall(); await asyncio.sleep(4); proxy.flow()
        proxy.drop()
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

CHUNK = 65536


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.latency = 0.0
        self.refuse = False
        self.connections = 0
        self.dropped = 0
        self.chunks = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- faults

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self) -> None:
        """Hold every byte from now on (none is lost) until `flow()`."""
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def drop(self) -> None:
        """Close every open connection, both sides, at once."""
        for client, server in list(self._pairs):
            for writer in (client, server):
                transport = writer.transport
                if transport is not None and not transport.is_closing():
                    transport.abort()
            self.dropped += 1
        self._pairs.clear()

    # ---------------------------------------------------------------- forwarding

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        self._pairs.discard(pair)
        for w in (writer, up_writer):
            if w.transport is not None and not w.transport.is_closing():
                w.transport.abort()
        for task in pumps:
            task.cancel()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    return
                if self.latency > 0:
                    await asyncio.sleep(self.latency)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                self.chunks += 1
        except (ConnectionError, OSError):
            return
