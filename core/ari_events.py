"""One owner for the app's single ARI event stream, routing each event to the call it is about.

ARI gives one websocket per application, so neither the dialer nor the IVR runner may open its
own. The dispatcher reads the stream and puts every event into the queue of each call it concerns:

    dispatcher = EventDispatcher()
    pump = asyncio.create_task(dispatcher.run(ari.events()))
    events = dispatcher.subscribe(attempt_id)          # before the originate: nothing is missed
    await ari.originate(endpoint, channel_id=attempt_id)
    ...                                                # read StasisStart, AMD, etc. from `events`
    result = await run_flow(ari, attempt_id, flow, fields, events, prompts=cache)
    dispatcher.unsubscribe(attempt_id)

An event is about a call when its channel (``channel.id``; ``peer``/``caller`` of a Dial) is
the subscribed id or an alias of it (a snoop channel, a bridge), or when its playback or
recording targets one of those (``target_uri`` ``channel:<id>`` / ``bridge:<id>``).
Connection events (``WarmlineConnected``/``WarmlineReconnected``) go to every subscriber, since
events may have been lost while the socket was down. Events that reach no subscriber (an inbound
call's StasisStart, say) go to the ``unrouted`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from core.ari import CONNECTED, RECONNECTED

log = logging.getLogger(__name__)

JSON = dict[str, Any]
CONNECTION_EVENTS = frozenset({CONNECTED, RECONNECTED})
HANGUP_EVENTS = frozenset({"StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"})
ENDING_EVENTS = frozenset({"ChannelHangupRequest", "ChannelDestroyed"})  # the channel itself ends
# Event types no feature reads (a channel's dialplan steps and variables, caller id and connected
# line updates, holds, user events, tones, Dial progress): Asterisk is asked not to send them
# (`AriClient.filter_events`), so neither side spends CPU on them. A trivial call's Local channel
# reports each of its dialplan steps and variables otherwise.
UNUSED_EVENTS = (
    "ChannelDialplan",
    "ChannelVarset",
    "ChannelCallerId",
    "ChannelConnectedLine",
    "ChannelUserevent",
    "ChannelHold",
    "ChannelUnhold",
    "ChannelToneDetected",
    "Dial",
)


def event_ids(event: JSON) -> set[str]:
    """Every channel or bridge id an ARI event concerns."""
    ids: set[str] = set()
    for key in ("channel", "peer", "caller", "bridge", "replace_channel"):
        obj = event.get(key)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            ids.add(obj["id"])
    for key in ("playback", "recording"):
        obj = event.get(key)
        if isinstance(obj, dict):
            target = obj.get("target_uri")
            if isinstance(target, str) and ":" in target:
                ids.add(target.split(":", 1)[1])
    return ids


class ChannelEvents:
    """The events of one call, in arrival order. ``get()`` waits for the next one."""

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.ids: set[str] = {channel_id}
        self._queue: asyncio.Queue[JSON] = asyncio.Queue()
        self.closed = False
        self.hung_up = False  # a hang-up of the call's own channel has arrived (read or not yet)

    def put(self, event: JSON) -> None:
        if event.get("type") in ENDING_EVENTS:
            channel = event.get("channel")
            if isinstance(channel, dict) and channel.get("id") == self.channel_id:
                self.hung_up = True
        self._queue.put_nowait(event)

    async def get(self) -> JSON:
        return await self._queue.get()

    def get_nowait(self) -> JSON | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()

    async def wait_for(
        self,
        predicate: Callable[[JSON], bool],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> JSON | None:
        """The next event that satisfies ``predicate`` (others are dropped); None on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.get()
                    if predicate(event):
                        return event
        except TimeoutError:
            return None


class EventDispatcher:
    """Routes ARI events by channel (and alias) id to per-call ChannelEvents queues."""

    def __init__(self, unrouted: Callable[[JSON], None] | None = None) -> None:
        self._by_id: dict[str, ChannelEvents] = {}
        self._subscribers: dict[str, ChannelEvents] = {}
        self.unrouted = unrouted
        self.connected = asyncio.Event()
        self.dispatched = 0

    def subscribe(self, channel_id: str) -> ChannelEvents:
        """The queue for a call; subscribe before the originate so no event is missed."""
        existing = self._subscribers.get(channel_id)
        if existing is not None:
            return existing
        if channel_id in self._by_id:
            raise ValueError(f"{channel_id} is already an alias of {self._by_id[channel_id].channel_id}")
        events = ChannelEvents(channel_id)
        self._subscribers[channel_id] = events
        self._by_id[channel_id] = events
        return events

    def alias(self, channel_id: str, other_id: str) -> None:
        """Route events about ``other_id`` (a snoop channel, a bridge) to ``channel_id``'s queue."""
        events = self._subscribers[channel_id]
        events.ids.add(other_id)
        self._by_id[other_id] = events

    def unsubscribe(self, channel_id: str) -> None:
        events = self._subscribers.pop(channel_id, None)
        if events is None:
            return
        events.closed = True
        for other in events.ids:
            if self._by_id.get(other) is events:
                del self._by_id[other]

    @contextlib.contextmanager
    def subscription(self, channel_id: str) -> Iterator[ChannelEvents]:
        events = self.subscribe(channel_id)
        try:
            yield events
        finally:
            self.unsubscribe(channel_id)

    def __contains__(self, channel_id: object) -> bool:
        return channel_id in self._subscribers

    def __len__(self) -> int:
        return len(self._subscribers)

    def dispatch(self, event: JSON) -> int:
        """Deliver one event; returns how many calls received it."""
        self.dispatched += 1
        if event.get("type") in CONNECTION_EVENTS:
            self.connected.set()
            for events in self._subscribers.values():
                events.put(event)
            if self.unrouted is not None:
                self.unrouted(event)
            return len(self._subscribers)
        targets: dict[int, ChannelEvents] = {}
        for some_id in event_ids(event):
            found = self._by_id.get(some_id)
            if found is not None:
                targets[id(found)] = found
        for queue in targets.values():
            queue.put(event)
        if not targets and self.unrouted is not None:
            self.unrouted(event)
        return len(targets)

    async def run(self, source: AsyncIterator[JSON]) -> None:
        """Pump ``source`` (``ari.events()``) until it ends or this task is cancelled."""
        try:
            async for event in source:
                try:
                    self.dispatch(event)
                except Exception:  # one bad event or callback must not stop every call's events
                    log.exception("dispatching ARI event %s", event.get("type"))
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
