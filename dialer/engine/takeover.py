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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Collection, Iterable
from typing import Any

from core.ari import CONNECTED, RECONNECTED, AriClient, AriError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
APP_VARIABLE = "WL_APP"  # the channel variable naming the app a call goes back into (extensions.conf)
BEAT_EVERY = 1.0  # seconds between a worker's heartbeats
BEAT_LOOK = 3.0  # seconds between the two reads of a foreign worker's heartbeat
RECHECK = 2.0  # seconds between looks at a live foreign worker's calls


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
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
