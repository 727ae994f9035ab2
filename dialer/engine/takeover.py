"""Two dialer workers on one Asterisk node never cut each other's calls (docs/faults.md).

Each worker has a Stasis app of its own, ``<app>-<tag>``, besides the node's shared app: it
originates into its own app with the channel variable ``WL_APP`` naming it, so the dialplan sends
its calls back there after AMD or an agent's leg (config/asterisk/extensions.conf), and its own
app's websocket stays open as long as the worker runs -- also after it lost the node's lease: it
follows its live calls to their end (journalling their outcomes while its database is away) and
dials nothing new. The shared app (inbound calls, agents' phones) is followed by the lease holder
alone.

Whether a worker lives is told by a heartbeat on Asterisk: every second it sets the global variable
``WL_BEAT_<its app>``. The lease holder, reconciling, finds which worker's app each live attempt's
channel belongs to (``GET /applications``: an app stays listed while it has channels, its websocket
closed or not) and reads that app's heartbeat twice, `BEAT_LOOK` seconds apart: changed, the worker
lives and its calls are left to it (looked at again every `RECHECK` seconds until they end or it
dies); unchanged, its calls are adopted -- the holder opens a websocket on the dead worker's app
(a call coming back from AMD into an app nobody listens on would be hung up) and follows them.

Dead is judged conservatively (`dead_look`): a live worker whose ARI is slow, or whose event loop
paused, misses beats without being dead. Should it be taken for dead all the same, Asterisk settles
it: an app has one websocket, the newest; the older one receives ``ApplicationReplaced`` and then
nothing, left open (seen on the real Asterisk, tests/integration/test_replaced_lab.py): the event
is the only sign. The worker whose app is replaced -- its own, or one it adopted -- closes that
app's socket for good (`until_replaced`: no reconnection, which would take the app back), forgets the calls
that came through it without touching them (`Followed.drop`: no hang-up, no outcome; the new owner
follows them to their end and closes them), and dials nothing on the node until it holds the lease
again. Outcomes it journalled for calls that had already ended stay true and are replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.ari import CONNECTED, HANDED_OVER, RECONNECTED, AriClient, AriError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
APP_VARIABLE = "WL_APP"  # the channel variable naming the app a call goes back into (extensions.conf)
BEAT_EVERY = 1.0  # seconds between a worker's heartbeats
BEAT_LOOK = 3.0  # seconds between the two reads of a foreign worker's heartbeat
RECHECK = 2.0  # seconds between looks at a live foreign worker's calls
MISSED_BEATS = 3  # beats a live worker may miss besides one held by a slow ARI (see `dead_look`)
REPLACED = "ApplicationReplaced"  # Asterisk: another websocket took this app; this one is closed


def dead_look(ari_timeout: float) -> float:
    """Seconds a worker's heartbeat must stay unchanged before it is taken for dead.

    A live worker's beat can be late by a whole ARI timeout (its POST hangs that long before it is
    given up and the next one is sent `BEAT_EVERY` later) and by a stall of its own (a GC or
    event-loop pause, ARI slow for it): the look covers the timeout plus `MISSED_BEATS` beats, never
    less than `BEAT_LOOK`. Taking a live worker for dead is not a doubled call (`until_replaced`),
    but it moves its calls to another worker for nothing; waiting longer for a dead one only delays
    following its calls -- a call coming back from AMD meanwhile would be hung up by Asterisk, which
    is why the look is not longer still."""
    return max(BEAT_LOOK, ari_timeout + MISSED_BEATS * BEAT_EVERY)


def worker_app(shared: str, tag: str) -> str:
    return f"{shared}-{tag}"


def beat_name(app: str) -> str:
    """The global variable holding `app`'s heartbeat (letters, digits and _ only)."""
    return "WL_BEAT_" + re.sub(r"[^A-Za-z0-9_]", "_", app)


async def beat(ari: AriClient, app: str, *, every: float = BEAT_EVERY) -> None:
    """Set `app`'s heartbeat every `every` seconds, until cancelled (a failed one is skipped)."""
    name, n = beat_name(app), 0
    while True:
        n += 1
        with contextlib.suppress(AriError):
            await ari.set_global(name, str(n))
        await asyncio.sleep(every)


async def read_beat(ari: AriClient, app: str) -> str:
    """`app`'s heartbeat now ("" when unset or ARI cannot say)."""
    try:
        return await ari.get_global(beat_name(app))
    except AriError:
        return ""


async def read_beats(ari: AriClient, apps: Iterable[str]) -> dict[str, str]:
    return {app: await read_beat(ari, app) for app in apps}


async def alive_apps(ari: AriClient, apps: Collection[str], *, look: float = BEAT_LOOK) -> dict[str, str]:
    """The apps among `apps` whose heartbeat changed over `look` seconds, with its last value."""
    if not apps:
        return {}
    first = await read_beats(ari, apps)
    await asyncio.sleep(look)
    second = await read_beats(ari, apps)
    return {app: value for app, value in second.items() if value and value != first[app]}


def channel_apps(applications: Iterable[JSON], shared: str) -> dict[str, set[str]]:
    """Channel id -> the workers' apps (``<shared>-...``) it is subscribed to."""
    prefix = f"{shared}-"
    out: dict[str, set[str]] = {}
    for app in applications:
        name = str(app.get("name") or "")
        if not name.startswith(prefix):
            continue
        for channel_id in app.get("channel_ids") or ():
            out.setdefault(str(channel_id), set()).add(name)
    return out


def shared_channels(applications: Iterable[JSON], shared: str) -> set[str]:
    """The channels subscribed to the shared app itself (a worker of the old kind placed them)."""
    return {
        str(channel_id)
        for app in applications
        if app.get("name") == shared
        for channel_id in app.get("channel_ids") or ()
    }


async def _close(events: AsyncIterator[JSON]) -> None:
    """Close the underlying stream of events (its websocket), whatever it raises."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def quiet(events: AsyncIterator[JSON], connected: asyncio.Event | None = None) -> AsyncIterator[JSON]:
    """A second app's events without its connection events (the worker's own app's stream says
    when Asterisk was reconnected to); `connected` is set once it is connected."""
    try:
        async for event in events:
            if event.get("type") in (CONNECTED, RECONNECTED):
                if connected is not None:
                    connected.set()
                continue
            yield event
    finally:
        await _close(events)


async def until_replaced(
    events: AsyncIterator[JSON], on_replaced: Callable[[JSON], None]
) -> AsyncIterator[JSON]:
    """An app's events until Asterisk says another websocket took the app (``ApplicationReplaced``):
    then `on_replaced` is called and the stream is closed -- not reconnected, which would take the
    app back from its new owner. (Asterisk leaves the replaced socket open and silent: without this,
    the worker would go on driving calls whose events now go to another worker.)"""
    try:
        async for event in events:
            if event.get("type") == REPLACED:
                on_replaced(event)
                return
            yield event
    finally:
        await _close(events)


@dataclass
class Followed:
    """The calls a worker follows on one node, by the app their events come through."""

    tasks: dict[str, tuple[str, asyncio.Task[Any]]] = field(default_factory=dict)
    dropped: int = 0  # calls given up because their app was taken by another worker

    def add(self, attempt_id: str, app: str, task: asyncio.Task[Any]) -> None:
        self.tasks[attempt_id] = (app, task)
        task.add_done_callback(lambda t: self._done(attempt_id, t))

    def _done(self, attempt_id: str, task: asyncio.Task[Any]) -> None:
        if self.tasks.get(attempt_id, (None, None))[1] is task:
            del self.tasks[attempt_id]

    def drop(self, app: str) -> list[str]:
        """Stop following the calls that came through `app`, without touching them: their tasks
        are cancelled (a cancelled call leaves its channel and its attempt alone)."""
        ids = [attempt_id for attempt_id, (via, _) in self.tasks.items() if via == app]
        for attempt_id in ids:
            self.tasks.pop(attempt_id)[1].cancel(HANDED_OVER)
        self.dropped += len(ids)
        return ids

    def ended(self, attempt_id: str) -> None:
        """The call ended and is being closed: no longer given up with its app."""
        self.tasks.pop(attempt_id, None)
