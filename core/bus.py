"""The MQTT bus: a small, self-healing wrapper over aiomqtt.

    async with Bus.from_settings(get_settings(), component="dialer") as bus:
        await bus.publish(AgentState(agent="1001", state="available", since=now))
        async with bus.subscribe(AgentState.pattern(), AgentState) as states:
            async for path, state in states:
                ...

What it promises:

- Topics given to and yielded by the bus are *paths relative to the topic prefix*
  (`agents/1001/state`); the prefix (`warmline` by default) is added on the wire.
- `publish` sends JSON at QoS 1, retained if the message class is. While the broker is away the
  message waits in a bounded outbox (oldest dropped first when full, counted in `dropped`) and is
  sent, in order, after the reconnect.
- The connection is re-made with capped, jittered exponential backoff. Subscriptions are made again
  on every new connection before `connected` is set, and before the outbox is sent.
- With a `component`, the bus keeps `health/{component}` (ServiceHealth, retained) true: it is the
  connection's last will (ok=False, so a component that dies is seen), it is re-announced on every
  connect (the last health the component published, or ok=True), and `close()` leaves ok=False
  "stopped".
- Retained-message clears (empty payloads) and payloads that do not parse are not yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import aiomqtt

from core.messages import (
    DEFAULT_PREFIX,
    BusMessage,
    ServiceHealth,
    check_prefix,
    join_topic,
    utc_now,
)
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BusMessage)

StateHook = Callable[[bool, str], None]
"""Called as `hook(connected, detail)` on every change of connection state. Must not block."""

QOS = 1


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter (a delay between half and all of the cap)."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        capped = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return random.uniform(capped / 2, capped)


@dataclass(eq=False)
class _Outgoing:
    topic: str
    payload: str | bytes
    retain: bool
    sent: asyncio.Future[bool]


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _parse_object(payload: bytes) -> dict[str, Any]:
    value = json.loads(payload)
    if not isinstance(value, dict):
        raise ValueError("payload is not a JSON object")
    return value


def _payload_bytes(payload: object) -> bytes | None:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return None


class Subscription(Generic[T]):
    """One consumer of a topic filter: an async iterator of `(path, value)`.

    Made by `Bus.subscribe`; registered at once. As an async context manager it waits (when
    connected) until the broker has acknowledged the filter, and unsubscribes on exit.
    """

    def __init__(self, bus: Bus, pattern: str, parse: Callable[[bytes], T], maxsize: int) -> None:
        self.pattern = pattern
        self.filter = join_topic(bus.prefix, pattern)
        self.active = asyncio.Event()
        self.dropped = 0
        self._bus = bus
        self._parse = parse
        self._maxsize = maxsize
        self._queue: asyncio.Queue[tuple[str, T] | None] = asyncio.Queue()
        self._closed = False
        aiomqtt.Wildcard(self.filter)  # raises ValueError for a malformed filter

    async def wait_active(self) -> None:
        """Wait until the broker has the subscription (wrap in `asyncio.timeout` to bound it)."""
        await self.active.wait()

    async def aclose(self) -> None:
        """Stop receiving; iteration ends after what is already queued."""
        if not self._closed:
            self._bus._remove(self)
            self._end()

    def _end(self) -> None:
        self._closed = True
        self._queue.put_nowait(None)

    def _deliver(self, path: str, payload: bytes) -> None:
        if self._closed:
            return
        try:
            value = self._parse(payload)
        except ValueError as exc:
            log.warning("bus: unreadable message on %s skipped: %s", path, exc)
            return
        if self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.dropped += 1
            log.warning("bus: consumer of %s too slow, oldest message dropped", self.pattern)
        self._queue.put_nowait((path, value))

    async def __aenter__(self) -> Self:
        if self._bus.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._bus.timeout):
                    await self.active.wait()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[str, T]:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # keep later calls ending too
            raise StopAsyncIteration
        return item


class Bus:
    """A reconnecting MQTT connection for one component. Use as `async with Bus(...) as bus`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        component: str | None = None,
        on_state: StateHook | None = None,
        backoff: Backoff | None = None,
        keepalive: int = 30,
        timeout: float = 10.0,
        max_pending: int = 10_000,
    ) -> None:
        self.host, self.port = host, port
        self.prefix = check_prefix(prefix)
        self.component = component
        self.client_id = client_id or f"{component or 'warmline'}-{uuid.uuid4().hex[:12]}"
        self.timeout = timeout
        self.connects = 0
        self.dropped = 0
        self._credentials = (username, password)
        self._on_state = on_state
        self._backoff = backoff or Backoff()
        self._keepalive = keepalive
        self._max_pending = max_pending
        self._health = ServiceHealth(component=component, ok=True, detail="connected") if component else None
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_changed = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._subs: list[Subscription[Any]] = []
        self._patterns: dict[str, int] = {}
        self._on_broker: set[str] = set()
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._closing = False
        self._reported: bool | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        component: str | None = None,
        client_id: str | None = None,
        on_state: StateHook | None = None,
        backoff: Backoff | None = None,
    ) -> Bus:
        return cls(
            settings.mqtt_host,
            settings.mqtt_port,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            client_id=client_id,
            prefix=settings.topic_prefix,
            component=component,
            on_state=on_state,
            backoff=backoff,
        )

    # -- state --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while connected with every subscription in place."""
        return self._connected.is_set()

    @property
    def connected_event(self) -> asyncio.Event:
        return self._connected

    @property
    def pending(self) -> int:
        """Messages waiting in the outbox."""
        return len(self._outbox)

    async def wait_connected(self) -> None:
        """Wait for a connection (wrap in `asyncio.timeout` to bound it)."""
        await self._connected.wait()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see `wait_connected`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"bus-{self.client_id}")

    async def close(self, flush_timeout: float = 5.0) -> None:
        """Send what is queued (up to `flush_timeout`), mark the component stopped, disconnect."""
        if self._closing:
            return
        self._closing = True
        if self._health is not None:
            self._health = ServiceHealth(component=self._health.component, ok=False, detail="stopped")
            self._enqueue(self._health.topic(self.prefix), self._health.model_dump_json(), retain=True)
        if self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    await self._drained.wait()
        if self._outbox:
            log.warning("bus: closing with %d unsent message(s)", len(self._outbox))
        self._stop.set()
        await self._stop_task()
        for sub in list(self._subs):
            sub._end()
        for item in self._outbox:
            _resolve(item.sent, False)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _stop_task(self) -> None:
        tasks = {t for t in (self._task, *self._background) if t is not None}
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=self.timeout + 1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, message: BusMessage) -> bool:
        """Send `message`; True once the broker has it, False if it waits for a reconnect."""
        if isinstance(message, ServiceHealth) and message.component == self.component:
            self._health = message
        return await self._submit(message.topic(self.prefix), message.model_dump_json(), message.retained)

    async def clear_retained(self, path: str) -> bool:
        """Remove the retained message at `path` (relative to the prefix)."""
        return await self._submit(join_topic(self.prefix, path), b"", retain=True)

    async def _submit(self, topic: str, payload: str | bytes, retain: bool) -> bool:
        if self._closing:
            raise RuntimeError("bus is closed")
        item = self._enqueue(topic, payload, retain)
        if not self.connected:
            return False
        # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation that lands
        # as the message is sent, and a worker cancelled at shutdown then publishes on for ever
        # (a `warmline up` that never stopped: the compliments worker, fresh run 5).
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(item.sent)
        except TimeoutError:
            return False

    def _enqueue(self, topic: str, payload: str | bytes, retain: bool) -> _Outgoing:
        if len(self._outbox) >= self._max_pending:
            lost = self._outbox.popleft()
            self.dropped += 1
            _resolve(lost.sent, False)
            log.warning("bus: outbox full (%d), oldest message for %s dropped", self._max_pending, lost.topic)
        item = _Outgoing(topic, payload, retain, asyncio.get_running_loop().create_future())
        self._outbox.append(item)
        self._drained.clear()
        self._outbox_changed.set()
        return item

    # -- subscribing --------------------------------------------------------------------------

    @overload
    def subscribe(
        self, pattern: str, model: None = None, *, maxsize: int = ...
    ) -> Subscription[dict[str, Any]]: ...

    @overload
    def subscribe(self, pattern: str, model: type[M], *, maxsize: int = ...) -> Subscription[M]: ...

    def subscribe(
        self, pattern: str, model: type[BusMessage] | None = None, *, maxsize: int = 10_000
    ) -> Subscription[Any]:
        """Receive `(path, value)` for messages matching `pattern` (relative to the prefix).

        With `model`, values are parsed into it; without, they are JSON objects (dicts).
        """
        parse: Callable[[bytes], Any] = model.model_validate_json if model else _parse_object
        sub: Subscription[Any] = Subscription(self, pattern, parse, maxsize)
        self._subs.append(sub)
        self._patterns[sub.filter] = self._patterns.get(sub.filter, 0) + 1
        if sub.filter in self._on_broker:
            sub.active.set()
        elif self._client is not None:
            self._spawn(self._broker_subscribe(self._client, sub.filter))
        return sub

    def _remove(self, sub: Subscription[Any]) -> None:
        self._subs.remove(sub)
        remaining = self._patterns[sub.filter] - 1
        if remaining:
            self._patterns[sub.filter] = remaining
            return
        del self._patterns[sub.filter]
        if sub.filter in self._on_broker and self._client is not None:
            self._on_broker.discard(sub.filter)
            self._spawn(self._broker_unsubscribe(self._client, sub.filter))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _broker_subscribe(self, client: aiomqtt.Client, topic_filter: str) -> None:
        try:
            await client.subscribe(topic_filter, qos=QOS, timeout=self.timeout)
        except aiomqtt.MqttError as exc:
            log.warning("bus: subscribe to %s failed (retried on reconnect): %s", topic_filter, exc)
            return
        if client is self._client:
            self._mark_active(topic_filter)

    async def _broker_unsubscribe(self, client: aiomqtt.Client, topic_filter: str) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.unsubscribe(topic_filter, timeout=self.timeout)

    def _mark_active(self, topic_filter: str) -> None:
        self._on_broker.add(topic_filter)
        for sub in self._subs:
            if sub.filter == topic_filter:
                sub.active.set()

    # -- the connection -----------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            before = self.connects
            reason = await self._session_outcome()
            attempt = 0 if self.connects != before else attempt
            self._report(False, reason)
            if self._stop.is_set():
                return
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.info("bus: %s; retrying in %.2f s", reason, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    async def _session_outcome(self) -> str:
        try:
            await self._session()
        except aiomqtt.MqttError as exc:
            return f"broker {self.host}:{self.port} unreachable or lost: {exc}"
        except Exception as exc:
            log.exception("bus: unexpected error in the connection")
            return f"unexpected error: {exc!r}"
        return "stopped" if self._stop.is_set() else "disconnected"

    async def _session(self) -> None:
        client = self._new_client()
        async with client:
            try:
                await self._sync_subscriptions(client)
                await self._announce(client)
                self._up(client)
                await self._serve(client)
            finally:
                self._down()

    def _new_client(self) -> aiomqtt.Client:
        username, password = self._credentials
        return aiomqtt.Client(
            self.host,
            self.port,
            username=username,
            password=password,
            identifier=self.client_id,
            will=self._will(),
            keepalive=self._keepalive,
            timeout=self.timeout,
        )

    def _will(self) -> aiomqtt.Will | None:
        if self.component is None:
            return None
        will = ServiceHealth(component=self.component, ok=False, detail="connection lost")
        return aiomqtt.Will(will.topic(self.prefix), will.model_dump_json(), qos=QOS, retain=True)

    async def _sync_subscriptions(self, client: aiomqtt.Client) -> None:
        while pending := [f for f in self._patterns if f not in self._on_broker]:
            for topic_filter in pending:
                await client.subscribe(topic_filter, qos=QOS, timeout=self.timeout)
                self._mark_active(topic_filter)

    async def _announce(self, client: aiomqtt.Client) -> None:
        if self._health is None or self._closing:
            return
        health = self._health.model_copy(update={"at": utc_now()})
        await client.publish(
            health.topic(self.prefix), health.model_dump_json(), qos=QOS, retain=True, timeout=self.timeout
        )

    def _up(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.connects += 1
        self._connected.set()
        self._outbox_changed.set()
        self._report(True, f"connected to {self.host}:{self.port}")

    def _down(self) -> None:
        self._client = None
        self._connected.clear()
        self._on_broker.clear()
        for sub in self._subs:
            sub.active.clear()

    def _report(self, connected: bool, detail: str) -> None:
        if self._reported == connected:
            return
        self._reported = connected
        level = logging.INFO if connected or self._stop.is_set() else logging.WARNING
        log.log(level, "bus %s: %s", self.client_id, detail)
        if self._on_state is not None:
            try:
                self._on_state(connected, detail)
            except Exception:
                log.exception("bus: on_state hook failed")

    async def _serve(self, client: aiomqtt.Client) -> None:
        tasks = [
            asyncio.create_task(self._read(client)),
            asyncio.create_task(self._send(client)),
            asyncio.create_task(self._stop.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if (exc := task.exception()) is not None:
                raise exc

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = _payload_bytes(message.payload)
            if not payload:
                continue  # a retained message being cleared
            path = message.topic.value[len(self.prefix) + 1 :]
            for sub in list(self._subs):
                if message.topic.matches(sub.filter):
                    sub._deliver(path, payload)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            while self._outbox:
                item = self._outbox[0]
                await client.publish(
                    item.topic, item.payload, qos=QOS, retain=item.retain, timeout=self.timeout
                )
                if self._outbox and self._outbox[0] is item:
                    self._outbox.popleft()
                _resolve(item.sent, True)
            self._drained.set()
            self._outbox_changed.clear()
            await self._outbox_changed.wait()
