"""A supervisor on an agent's call, through ARI: listen, whisper (coach), or join.

- **listen**: a snoop channel on the agent's leg that hears both directions (``spy=both``), put
  into a bridge of its own; the supervisor's phone is rung into the app and added to that bridge.
  Nobody on the call hears the supervisor.
- **whisper**: the same, with the snoop whispering ``out`` on the agent's leg: what the supervisor
  says is mixed into what the agent's phone hears, and never into what the callee hears.
- **join**: the supervisor's phone is added to the call's own bridge (everyone hears everyone).

The supervisor's leg is originated into the Stasis app with the arguments ``help-supervisor,
<bridge>``; the handler registered for them (:func:`on_supervisor_leg`, in the process that follows
the node's events) adds it to the bridge once answered, and when the supervisor hangs up takes the
snoop and the listening bridge down. The snoop enters the app as ``help-snoop`` (left alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from core.ari import AriClient, AriError
from core.features import StasisContext

log = logging.getLogger(__name__)

SUPERVISOR_ARG = "help-supervisor"
SNOOP_ARG = "help-snoop"


class CoachError(Exception):
    """The supervisor could not be put on the call: ``code`` (stable) and what happened."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Coaching:
    """What was set up: the agent's leg, the snoop (None for join), the bridge, the supervisor's leg."""

    agent_channel: str
    snoop_channel: str | None
    bridge_id: str
    supervisor_channel: str


async def agent_channel(ari: AriClient, endpoint: str) -> str | None:
    """The agent's live leg on ``endpoint`` (``PJSIP/<endpoint>-…``), preferring one in a bridge."""
    prefix = f"PJSIP/{endpoint}-"
    legs = [c for c in await ari.channels() if str(c.get("name", "")).startswith(prefix)]
    if not legs:
        return None
    bridged = {cid for b in await ari.bridges() for cid in b.get("channels", ())}
    legs.sort(key=lambda c: (c["id"] not in bridged, c.get("state") != "Up"))
    return str(legs[0]["id"])


async def coach(
    ari: AriClient,
    action: str,
    *,
    agent_endpoint: str,
    supervisor_endpoint: str,
    action_id: int,
    caller_id: str = '"warmline" <help>',
) -> Coaching:
    """Put the supervisor on the agent's call as ``action`` (listen / whisper / join)."""
    leg = await agent_channel(ari, agent_endpoint)
    if leg is None:
        raise CoachError("no_call", f"agent endpoint {agent_endpoint} has no call on this node")
    supervisor_leg = f"help-{action_id}-supervisor"
    if action == "join":
        bridge = await ari.bridge_of(leg)
        if bridge is None:
            raise CoachError("not_bridged", f"the agent's leg {leg} is in no bridge")
        bridge_id, snoop_id = str(bridge["id"]), None
    else:
        bridge_id, snoop_id = f"help-{action_id}", f"help-{action_id}-snoop"
        await ari.create_bridge("mixing", bridge_id, name=f"help {action}")
        try:
            await ari.spy(leg, whisper=action == "whisper", snoop_id=snoop_id, app_args=SNOOP_ARG)
            await _add_when_in_app(ari, bridge_id, snoop_id)
        except AriError:
            await _quietly_tear_down(ari, bridge_id, snoop_id)
            raise
    try:
        await ari.originate(
            supervisor_endpoint,
            channel_id=supervisor_leg,
            app_args=[SUPERVISOR_ARG, bridge_id] + ([snoop_id] if snoop_id else []),
            caller_id=caller_id,
        )
    except AriError:
        if snoop_id is not None:
            await _quietly_tear_down(ari, bridge_id, snoop_id)
        raise
    return Coaching(leg, snoop_id, bridge_id, supervisor_leg)


async def end_courteously(
    ari: AriClient, agent_endpoint: str, media: str | None, *, wait_s: float = 15.0, poll_s: float = 0.1
) -> bool:
    """End the agent's call politely: the others on it hear ``media`` (the closing prompt), then
    their channels are hung up; the agent's own leg is left to the hand-over. True when a call was
    found and ended."""
    leg = await agent_channel(ari, agent_endpoint)
    bridge = await ari.bridge_of(leg) if leg else None
    if bridge is None:
        return False
    others = [str(c) for c in bridge.get("channels", ()) if c != leg]
    if media is not None:
        playbacks = []
        for channel_id in others:
            with contextlib.suppress(AriError):
                playbacks.append(str((await ari.play(channel_id, media)).get("id", "")))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while playbacks and loop.time() < deadline:
            still = []
            for playback_id in playbacks:
                try:
                    playback = await ari.get_playback(playback_id)
                except AriError:
                    continue  # gone: it finished
                if playback.get("state") not in ("done", "failed", "cancelled"):
                    still.append(playback_id)
            playbacks = still
            if playbacks:
                await asyncio.sleep(poll_s)
    for channel_id in others:
        with contextlib.suppress(AriError):
            await ari.hangup(channel_id)
    return True


SNOOP_ENTRY_SECONDS = 5.0


async def _add_when_in_app(ari: AriClient, bridge_id: str, channel_id: str) -> None:
    """Add a new snoop channel to the bridge. ARI answers the snoop request before the channel has
    entered the app, and a bridge takes only channels in the app ("Channel not in Stasis
    application", 409/422): seen on a loaded machine. Retry briefly until it is in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNOOP_ENTRY_SECONDS
    delay = 0.02
    while True:
        try:
            await ari.add_channel(bridge_id, channel_id)
            return
        except AriError as exc:
            if "not in Stasis" not in exc.message or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def _quietly_tear_down(ari: AriClient, bridge_id: str, snoop_id: str | None) -> None:
    if snoop_id is not None:
        with contextlib.suppress(AriError):
            await ari.hangup(snoop_id)
    with contextlib.suppress(AriError):
        await ari.destroy_bridge(bridge_id)


async def on_supervisor_leg(ctx: StasisContext, event: dict[str, object]) -> None:
    """The supervisor answered: into the bridge; when they hang up, the snoop and its bridge go."""
    channel = event.get("channel")
    args = [str(a) for a in event.get("args") or []]  # type: ignore[attr-defined]
    channel_id = str(channel.get("id")) if isinstance(channel, dict) else ""
    bridge_id = args[1] if len(args) > 1 else ""
    snoop_id = args[2] if len(args) > 2 else None
    events = ctx.dispatcher.subscribe(channel_id)
    try:
        try:
            await ctx.ari.add_channel(bridge_id, channel_id)
        except AriError as exc:
            log.warning("supervisor leg %s could not join bridge %s: %s", channel_id, bridge_id, exc)
            with contextlib.suppress(AriError):
                await ctx.ari.hangup(channel_id)
            return
        while True:
            got = await events.get()
            if got.get("type") in ("StasisEnd", "ChannelDestroyed"):
                break
    finally:
        ctx.dispatcher.unsubscribe(channel_id)
        if snoop_id is not None:  # listen / whisper: the bridge was the supervisor's own
            await _quietly_tear_down(ctx.ari, bridge_id, snoop_id)


async def on_snoop(ctx: StasisContext, event: dict[str, object]) -> None:
    """The snoop channel entered the app: the coaching set-up owns it; nothing to do here."""
    channel = event.get("channel")
    if isinstance(channel, dict):
        ctx.dispatcher.unsubscribe(str(channel.get("id")))
