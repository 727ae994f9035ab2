"""ARI's HTTP requests over plain asyncio streams: a small keep-alive HTTP/1.1 client.

Why not httpx here: the dialer sends a few ARI requests per call, and httpx's own work per request
(URL merging, the auth flow, and anyio's stream attributes looked up for every pooled connection
each time a request is placed) cost the dialer more CPU than Asterisk spent on the whole call of a
callee who answers and hangs up at once (docs/faults.md, "Load"). ARI is a local, well-behaved
server that speaks small JSON bodies with a Content-Length, so a few dozen lines do.

Failures are raised as `AriHttpError` named like httpx's exceptions (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``RemoteProtocolError``...): the dialer tells "never sent"
(``ConnectError``) from "sent, answer lost" (the rest) by that name (dialer/engine/originate.py).
Nothing is ever sent twice: a request that fails on a reused connection is not retried.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_CONNECTIONS = 100  # requests in flight at once (httpx's default); more wait for a free one
MAX_IDLE = 20  # connections kept open between requests
MAX_HEADER_LINES = 100


class AriHttpError(Exception):
    """`kind` is the name httpx would give the failure (ConnectError, ReadTimeout, ...)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    content_type: str
    body: bytes


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AriHttp:
    """Requests to one ARI base URL (``http(s)://host:port/ari``) with basic auth."""

    def __init__(self, base_url: str, user: str, password: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        host = parts.netloc.rsplit("@", 1)[-1]
        self._head = f"Host: {host}\r\nAuthorization: Basic {token}\r\nAccept: */*\r\n"
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._ssl = ssl.create_default_context() if self.https else None

    async def request(self, method: str, target: str, body: bytes | None = None) -> Answer:
        """`target`: the path under the base URL with its query string, already encoded."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise AriHttpError("PoolTimeout", "no connection free in time") from None
        try:
            conn = await self._connection()
            try:
                answer, keep = await self._exchange(conn, method, target, body)
            except BaseException:
                conn[1].close()
                raise
            if keep and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
            else:
                conn[1].close()
            return answer
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        while self._idle:
            self._idle.pop()[1].close()

    async def _connection(self) -> _Conn:
        while self._idle:
            reader, writer = self._idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer  # the server closes idle connections: those are dropped here
            writer.close()
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.open_connection(
                    self.host, self.port, ssl=self._ssl, server_hostname=self.host if self._ssl else None
                )
        except TimeoutError:
            raise AriHttpError("ConnectTimeout", "timed out") from None
        except OSError as exc:
            raise AriHttpError("ConnectError", str(exc)) from exc

    async def _exchange(
        self, conn: _Conn, method: str, target: str, body: bytes | None
    ) -> tuple[Answer, bool]:
        reader, writer = conn
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        elif method in ("POST", "PUT", "DELETE"):
            head += "Content-Length: 0\r\n\r\n"
        else:
            head += "\r\n"
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(head.encode() + (body or b""))
                await writer.drain()
                return await _read_answer(reader)
        except TimeoutError:
            raise AriHttpError("ReadTimeout", "timed out") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise AriHttpError("RemoteProtocolError", f"{type(exc).__name__}: {exc}") from exc


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """One response: its status, body and whether the connection may be used again."""
    line = await reader.readline()
    if not line:
        raise AriHttpError("RemoteProtocolError", "Server disconnected without sending a response.")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    status = int(code)
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise AriHttpError("RemoteProtocolError", "too many header lines")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:  # no length given: the body runs to the end of the connection
        body = await reader.read()
        headers["connection"] = "close"
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return Answer(status, reason, headers.get("content-type", ""), body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
