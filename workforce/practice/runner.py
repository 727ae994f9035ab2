"""Play a practice scenario on the agent's channel: each line the caller says, then a pause.

The channel is the agent's own leg, in Stasis (the practice dialplan recorded it first). Each
step's text is spoken by the service's text to speech (``speak``: text and voice → a media URI),
played, waited for to its end, then the trainee has ``listen`` seconds to answer. The agent
hanging up ends it at once. Waits are on the event loop's clock, so the fake Asterisk with a
virtual clock runs a whole scenario in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.ari import AriClient, AriError
from core.ari_events import HANGUP_EVENTS, ChannelEvents
from workforce.practice.scenarios import Scenario

JSON = dict[str, Any]
Speak = Callable[[str, str], Awaitable[str]]  # (text, voice) -> media URI
PLAY_SLACK_S = 30.0  # a playback that never says it finished is given up after its text's time


@dataclass
class ScenarioResult:
    """How far the scenario got: steps whose line was played, and who ended the call."""

    played: int = 0
    ended_by: Literal["scenario", "agent"] = "scenario"
    warnings: list[str] = field(default_factory=list)


def _hung_up(event: JSON, channel_id: str) -> bool:
    return event.get("type") in HANGUP_EVENTS and event.get("channel", {}).get("id") == channel_id


def _finished(event: JSON, playback_id: str) -> bool:
    return event.get("type") == "PlaybackFinished" and event.get("playback", {}).get("id") == playback_id


async def _wait(
    events: ChannelEvents, channel_id: str, seconds: float, playback_id: str | None = None
) -> str:
    """``hangup``, ``finished`` (the playback) or ``timeout`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return "timeout"
        try:
            async with asyncio.timeout(left):
                event = await events.get()
        except TimeoutError:
            return "timeout"
        if _hung_up(event, channel_id):
            return "hangup"
        if playback_id is not None and _finished(event, playback_id):
            return "finished"


async def run_scenario(
    ari: AriClient, channel_id: str, scenario: Scenario, events: ChannelEvents, speak: Speak
) -> ScenarioResult:
    """Play ``scenario`` on ``channel_id`` to its end or until the agent hangs up."""
    result = ScenarioResult()
    for n, step in enumerate(scenario.steps, start=1):
        media = await speak(step.say, scenario.voice)
        playback_id = f"practice-{channel_id}-{n}"
        try:
            await ari.play(channel_id, media, playback_id=playback_id)
        except AriError as exc:
            if exc.status == 404:  # the channel is gone: the agent hung up
                result.ended_by = "agent"
                return result
            raise
        result.played = n
        # The longest a line can take is about a character a quarter second (espeak's cmn).
        waited = await _wait(events, channel_id, PLAY_SLACK_S + len(step.say) * 0.25, playback_id)
        if waited == "timeout":
            result.warnings.append(f"playback {playback_id} did not finish; going on")
            with contextlib.suppress(AriError):
                await ari.stop_playback(playback_id)
        if waited == "hangup" or await _wait(events, channel_id, step.listen) == "hangup":
            result.ended_by = "agent"
            return result
    return result
