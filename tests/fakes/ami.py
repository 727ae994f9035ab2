"""An Asterisk Manager Interface in memory: a loopback TCP server speaking AMI's line protocol.

`FakeAmi` greets (``Asterisk Call Manager/9.0.0``), checks the login, and answers each action with
``Response: Success`` or ``Response: Error`` and the action's ``ActionID``, as Asterisk does. It
knows the two actions warmline sends: ``MixMonitor`` (with a `FakeAsterisk`: the channel must be
up, its ``i(VAR)`` option sets VAR to the new MixMonitor's id, reported as ARI's ``ChannelVarset``,
and ``on_mixmonitor`` is called, e.g. to write the files) and ``StopMixMonitor`` (by channel and,
when given, ``MixMonitorID``; a channel that hung up took its MixMonitors along). Any other action
is an error, as an unknown one is. A test makes the next reply of an action an error with
`refuse`, holds it back with `hold`, and breaks every connection with `drop`.

    ami = FakeAmi(asterisk=fake_asterisk)
    async with ami.running():
        client = AmiClient("127.0.0.1", ami.port, ami.username, ami.secret)
        ...
    assert [a["Action"] for a in ami.actions] == ["Login", "MixMonitor", "StopMixMonitor"]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from core.ami import END, decode, encode
from tests.fakes.ari import FakeAsterisk

Message = dict[str, str]
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


@dataclass
class FakeMixMonitor:
    """One MixMonitor the fake started: its id, channel and the files its options name."""

    monitor_id: str
    channel: str
    options: str
    read_file: str | None = None  # r(): what the channel receives (relative to the monitor folder)
    write_file: str | None = None  # t(): what the channel is sent
    running: bool = True


@dataclass
class FakeAmi:
    asterisk: FakeAsterisk | None = None
    username: str = "warmline"
    secret: str = "fake-ami-secret"
    # Called as a MixMonitor starts (e.g. to write the files Asterisk would write).
    on_mixmonitor: Callable[[FakeMixMonitor], None] | None = None
    actions: list[Message] = field(default_factory=list)  # every action received (secrets masked)
    monitors: dict[str, FakeMixMonitor] = field(default_factory=dict)
    logins: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _refusals: dict[str, list[str]] = field(default_factory=dict)
    _holds: dict[str, asyncio.Event] = field(default_factory=dict)
    banner_held: asyncio.Event | None = None  # set: the banner waits for it (a slow Asterisk)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeAmi]:
        """Listen on a free loopback port (``port``) for as long as the block runs."""
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop listening and close every connection (AMI is down)."""
        if self._server is not None:
            self._server.close()
            self.drop()
            await self._server.wait_closed()
            self._server = None

    def drop(self) -> None:
        """Close every client's connection (Asterisk restarted, a network blip)."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def refuse(self, action: str, message: str = "Could not start monitoring channel") -> None:
        """The next ``action`` is answered ``Response: Error`` with ``message``."""
        self._refusals.setdefault(action, []).append(message)

    def hold(self, action: str) -> asyncio.Event:
        """``action`` gets no reply until the returned event is set."""
        self._holds[action] = asyncio.Event()
        return self._holds[action]

    def release(self, action: str) -> None:
        """``action`` is answered again (those held are answered now)."""
        held = self._holds.pop(action, None)
        if held is not None:
            held.set()

    def names(self) -> list[str]:
        return [a.get("Action", "") for a in self.actions]

    # ------------------------------------------------------------ the protocol

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        logged_in = False
        try:
            if self.banner_held is not None:  # a slow Asterisk: the socket open, no banner yet
                await self.banner_held.wait()
            writer.write(BANNER)
            while True:
                block = await reader.readuntil(END)
                message = decode(block[: -len(END)])
                self.actions.append({k: ("***" if k == "Secret" else v) for k, v in message.items()})
                name = message.get("Action", "")
                held = self._holds.get(name)
                if held is not None:
                    await held.wait()
                if name.lower() == "login":
                    ok = message.get("Username") == self.username and message.get("Secret") == self.secret
                    logged_in = ok
                    self.logins += ok
                    reply = _success("Authentication accepted") if ok else _error("Authentication failed")
                elif name.lower() == "logoff":
                    writer.write(encode({"Response": "Goodbye", "ActionID": message.get("ActionID", "")}))
                    break
                elif not logged_in:
                    reply = _error("Missing action in request")  # what Asterisk says before a login
                else:
                    reply = self._answer(name, message)
                if "ActionID" in message:
                    reply["ActionID"] = message["ActionID"]
                writer.write(encode(reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(self, name: str, message: Message) -> Message:
        refusals = self._refusals.get(name)
        if refusals:
            return _error(refusals.pop(0))
        if name == "MixMonitor":
            return self._mixmonitor(message)
        if name == "StopMixMonitor":
            return self._stop(message)
        return _error("Invalid/unknown command")

    def _alive(self, channel: str) -> bool:
        asterisk = self.asterisk
        return asterisk is None or (channel in asterisk.channels and channel not in asterisk.destroyed)

    def _mixmonitor(self, message: Message) -> Message:
        channel = message.get("Channel", "")
        if not channel:
            return _error("No channel specified")
        if not self._alive(channel):
            return _error("No such channel")
        options = message.get("Options", "")
        monitor = FakeMixMonitor(f"0x{next(self._ids):012x}", channel, options)
        monitor.read_file = _option(options, "r")
        monitor.write_file = _option(options, "t")
        self.monitors[monitor.monitor_id] = monitor
        var = _option(options, "i")
        if var and self.asterisk is not None:
            found = self.asterisk.channels[channel]
            found.variables[var] = monitor.monitor_id
            self.asterisk.emit_about(found, "ChannelVarset", variable=var, value=monitor.monitor_id)
        if self.on_mixmonitor is not None:
            self.on_mixmonitor(monitor)
        reply = _success()
        if var:
            reply["MixMonitorID"] = monitor.monitor_id
        return reply

    def _stop(self, message: Message) -> Message:
        channel = message.get("Channel", "")
        if not self._alive(channel):
            for monitor in self.monitors.values():
                if monitor.channel == channel:
                    monitor.running = False  # went with the channel
            return _error("No such channel")
        wanted = message.get("MixMonitorID")
        found = [
            m
            for m in self.monitors.values()
            if m.channel == channel and m.running and (not wanted or m.monitor_id == wanted)
        ]
        if not found:
            return _error("Could not stop monitoring channel")
        for monitor in found:
            monitor.running = False
        return _success()


def _option(options: str, letter: str) -> str | None:
    found = re.search(rf"(?<![a-zA-Z]){letter}\(([^)]*)\)", options)
    return found.group(1) if found else None


def _success(message: str = "") -> Message:
    return {"Response": "Success", **({"Message": message} if message else {})}


def _error(message: str) -> Message:
    return {"Response": "Error", "Message": message}
