"""A small, typed asyncio client for the Asterisk Manager Interface (AMI), for the few actions ARI lacks.

    async with AmiClient("127.0.0.1", 15038, "warmline", secret) as ami:
        reply = await ami.action("MixMonitor", Channel=channel_id, Options="r(a.wav)t(b.wav)")
        reply["MixMonitorID"]

What it promises:

- One TCP connection, opened on the first action and logged in (``Events: off``: the user has no
  read class either, so nothing but replies comes); actions on it may run at once, each sent with
  its own ``ActionID`` and answered by the reply that carries it.
- :meth:`AmiClient.action` returns the reply's fields when ``Response`` is ``Success`` and raises
  :class:`AmiError` otherwise: Asterisk said ``Error`` (its ``Message``), the login was refused, the
  connection could not be made or broke before the reply, or no reply came within ``timeout``.
- A broken connection fails the actions waiting on it and is made anew by the next action. After a
  failed connect the next attempts fail at once for ``retry_after`` seconds, so an AMI that is down
  costs a caller (who has a fallback) nothing but the error.
- The secret is sent in the login and never logged or shown in ``repr``.
- Values are single lines: a field with a line break is refused (ValueError), it would inject fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from types import TracebackType
from typing import Self

from core.settings import AsteriskNode, Settings

log = logging.getLogger(__name__)

Message = dict[str, str]
EOL = b"\r\n"
END = b"\r\n\r\n"
MAX_MESSAGE = 64 * 1024  # a reply larger than this is not one of ours: the connection is dropped


class AmiError(Exception):
    """An AMI action failed: which, and why (Asterisk's message, or what broke)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action}: {message}")
        self.action = action
        self.message = message


def encode(fields: dict[str, str]) -> bytes:
    """An AMI message: ``Key: value`` lines, then a blank line."""
    lines: list[str] = []
    for key, value in fields.items():
        if any(c in key + value for c in "\r\n") or ":" in key:
            raise ValueError(f"AMI field {key!r}: no line breaks (and no ':' in a name)")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def decode(block: bytes) -> Message:
    """One AMI message (without its blank line) to its fields; a line without ': ' is kept whole
    under its own text (``Response: Follows`` output), the first of a repeated key kept."""
    fields: Message = {}
    for raw in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = raw.partition(":")
        if not sep:
            fields.setdefault(raw, "")
            continue
        fields.setdefault(key.strip(), value.strip())
    return fields


class AmiClient:
    """One Asterisk's manager interface; use as ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        connect_timeout: float = 3.0,
        timeout: float = 5.0,  # seconds an action's reply may take
        retry_after: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retry_after = retry_after
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()  # one connect at a time
        self._writer: asyncio.StreamWriter | None = None
        self._logged_in = False  # the socket is open from the banner on; actions wait for the login
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._failed_at: float | None = None
        self._failure = ""
        self.connections = 0  # logins that succeeded (a reconnect counts again)

    def __repr__(self) -> str:
        return f"AmiClient({self.host}:{self.port}, user={self.username!r})"

    @classmethod
    def for_node(cls, node: AsteriskNode, settings: Settings) -> AmiClient | None:
        """The node's AMI client; None when the node has no AMI port."""
        if node.ami_port is None:
            return None
        return cls(node.ami_host, node.ami_port, node.ami_user, settings.node_ami_secret(node))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def connected(self) -> bool:
        return self._logged_in and self._writer is not None and not self._writer.is_closing()

    async def action(self, name: str, **fields: str) -> Message:
        """Send ``Action: name`` with ``fields``; the reply's fields on ``Response: Success``."""
        await self._connect()
        return await self._send(name, fields)

    async def aclose(self) -> None:
        writer, task = self._writer, self._reader_task
        self._writer, self._reader_task, self._logged_in = None, None, False
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.write(encode({"Action": "Logoff", "ActionID": self._next_id()}))
                writer.close()
                await writer.wait_closed()
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self._fail_pending("client closed")

    # ------------------------------------------------------------ the connection

    def _next_id(self) -> str:
        return f"warmline-{next(self._ids)}"

    async def _connect(self) -> None:
        if self.connected:
            return
        async with self._lock:
            if self.connected:
                return
            clock = asyncio.get_running_loop().time
            if self._failed_at is not None and clock() - self._failed_at < self.retry_after:
                raise AmiError("connect", f"{self.host}:{self.port} unavailable ({self._failure})")
            try:
                await self._open()
            except (OSError, TimeoutError, AmiError, asyncio.IncompleteReadError) as exc:
                self._failed_at, self._failure = clock(), _why(exc)
                await self._drop()
                log.warning("AMI %s:%s as %s: %s", self.host, self.port, self.username, self._failure)
                raise AmiError("connect", f"{self.host}:{self.port}: {self._failure}") from exc
            self._failed_at = None

    async def _open(self) -> None:
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._writer = writer
            banner = await reader.readline()  # "Asterisk Call Manager/9.0.0"
            if not banner.startswith(b"Asterisk Call Manager"):
                raise AmiError("connect", f"not an AMI server (said {banner[:40]!r})")
            self._reader_task = asyncio.create_task(self._read(reader), name=f"ami-{self.host}:{self.port}")
            await self._send("Login", {"Username": self.username, "Secret": self._secret, "Events": "off"})
        self._logged_in = True
        self.connections += 1
        log.info("AMI %s:%s logged in as %s", self.host, self.port, self.username)

    async def _send(self, name: str, fields: dict[str, str]) -> Message:
        writer = self._writer
        if writer is None:
            raise AmiError(name, "not connected")
        action_id = self._next_id()
        data = encode({"Action": name, "ActionID": action_id, **fields})
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = reply
        try:
            writer.write(data)
            await writer.drain()
            async with asyncio.timeout(self.timeout):
                message = await reply
        except TimeoutError as exc:
            raise AmiError(name, f"no reply within {self.timeout:g} s") from exc
        except AmiError as exc:  # the connection broke while we waited
            raise AmiError(name, exc.message) from exc
        except OSError as exc:
            await self._drop()
            raise AmiError(name, _why(exc)) from exc
        finally:
            self._pending.pop(action_id, None)
        if message.get("Response", "").lower() != "success":
            raise AmiError(name, message.get("Message") or message.get("Response") or "no response")
        return message

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "connection closed by Asterisk"
        try:
            while True:
                block = await reader.readuntil(END)
                message = decode(block[: -len(END)])
                reply = self._pending.get(message.get("ActionID", ""))
                if reply is not None and "Response" in message and not reply.done():
                    reply.set_result(message)
                elif "Event" in message:
                    log.debug("AMI event %s ignored", message.get("Event"))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            why = _why(exc) if not isinstance(exc, asyncio.IncompleteReadError) else why
        if self._reader_task is asyncio.current_task():
            self._reader_task = None
            await self._drop()
        self._fail_pending(why)

    async def _drop(self) -> None:
        self._logged_in = False
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _fail_pending(self, why: str) -> None:
        for action_id, reply in list(self._pending.items()):
            if not reply.done():
                reply.set_exception(AmiError(action_id, why))
                reply.exception()  # retrieved: a reply nobody awaits any more is not an error


def _why(exc: BaseException) -> str:
    if isinstance(exc, AmiError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
