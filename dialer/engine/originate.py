"""An originate whose answer never came, and channels nobody follows (docs/faults.md).

The dialer originates with a channel id it chose (the attempt's id), so when ARI's answer is lost
(a read timeout: Asterisk may well have placed the call) it can ask Asterisk whether that channel
exists before the attempt counts as anything:

- it exists → the call is followed like any other (nothing is dialled twice);
- it is absent after a few looks → the attempt is closed as ``failed`` (retried by the campaign's
  rule, never at once), and its id is watched: should the originate still reach Asterisk later
  (a stalled connection delivering it), the channel is hung up the moment it shows itself.

`StrayWatch` is that watch, plus the general rule: a channel that entered the dialer's part of the
app (Stasis args ``dialer`` or ``amd``) that this worker does not follow is hung up -- once the
node is reconciled, so a channel another worker left is adopted first, never cut.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from core.ari import AriClient, AriError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
LOOKS = 3  # times ARI is asked for the channel after a lost originate answer
LOOK_EVERY = 1.0  # seconds between those looks
DIALER_ARGS = frozenset({"dialer", "amd"})  # Stasis args of the dialer's own calls (engine.calls)
WATCH_MAX = 10_000  # ids watched at most (the oldest forgotten first)


def lost_answer(exc: AriError) -> bool:
    """The request may have reached Asterisk but its answer never came back (not a refusal, not
    a connection that was never made)."""
    return exc.status == 0 and not exc.message.startswith("ConnectError")


@dataclass(frozen=True)
class Found:
    """What ARI said about a channel after a lost originate answer."""

    state: Literal["exists", "absent", "unknown"]
    channel: JSON | None = None
    error: str | None = None


async def locate(
    ari: AriClient,
    channel_id: str,
    *,
    looks: int = LOOKS,
    every: float = LOOK_EVERY,
) -> Found:
    """Ask ARI for `channel_id` up to `looks` times, `every` seconds apart, until it is seen.
    ``absent`` only when ARI answered 404 every time; ``unknown`` when it could not say."""
    error: str | None = None
    absent = 0
    for n in range(looks):
        if n:
            await asyncio.sleep(every)
        try:
            channel = await ari.find_channel(channel_id)
        except AriError as exc:
            error = str(exc)
            continue
        if channel is not None:
            return Found("exists", channel)
        absent += 1
    if absent == looks:
        return Found("absent")
    return Found("unknown", error=error)


class StrayWatch:
    """Channel ids that must not live: originates given up on, whose channel may show up late."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.hung_up = 0  # strays found and hung up (for the figures)

    def __contains__(self, channel_id: object) -> bool:
        return channel_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, channel_id: str) -> None:
        self._ids[channel_id] = None
        self._ids.move_to_end(channel_id)
        while len(self._ids) > WATCH_MAX:
            self._ids.popitem(last=False)

    def discard(self, channel_id: str) -> None:
        self._ids.pop(channel_id, None)

    def stray(self, event: JSON, *, following: Collection[str], ready: bool) -> str | None:
        """The channel id to hang up for this event nobody routed, or None."""
        channel = event.get("channel")
        if not isinstance(channel, dict):
            return None
        channel_id = channel.get("id")
        if not isinstance(channel_id, str) or channel_id in following:
            return None
        kind = event.get("type")
        if kind == "ChannelDestroyed":
            self.discard(channel_id)
            return None
        if kind in ("StasisEnd", "ChannelHangupRequest"):
            return None
        if channel_id in self._ids:
            self.discard(channel_id)  # one hang-up is enough; its end is seen as ChannelDestroyed
            self.hung_up += 1
            return channel_id
        args = [str(a) for a in event.get("args") or []]
        if ready and kind == "StasisStart" and args[:1] and args[0] in DIALER_ARGS:
            self.hung_up += 1
            return channel_id
        return None


async def hang_up_stray(ari: AriClient, channel_id: str) -> None:
    log.warning("channel %s is up but nobody follows it: hanging up", channel_id)
    try:
        await ari.hangup(channel_id)
    except AriError as exc:
        if exc.status != 404:
            log.warning("stray channel %s could not be hung up: %s", channel_id, exc)
