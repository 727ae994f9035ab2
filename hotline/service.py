"""The inbound hotline: caller -> IVR menu -> queue by skill -> agent (recorded), an after-hours
flow when closed, and callback requests kept as contacts of a callback campaign.

An inbound call enters the Stasis app with the arguments ``inbound,<number>`` (from the
``lab-inbound`` context or a trunk's). Nobody subscribed to it, so the process's ARI event router
hands it to the handler this package registered for ``inbound`` (:mod:`hotline.plugin`):
:meth:`Hotline.on_stasis_start`, which serves it from menu to agent (or callback) to hang-up.

Configuration: ``settings.inbound_config`` (``config/inbound/hotline.yaml``): per number the menu
flow, a fallback skill, opening hours, the after-hours flow and the callback campaign.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agents.handover import (
    Announce,
    CallOrigin,
    Handover,
    HandoverDeps,
    HandoverRequest,
    HandoverResult,
    QueuePolicy,
)
from agents.routing import ANY_SKILL
from core.ari import AriClient, AriError
from core.ari_events import ChannelEvents, EventDispatcher
from core.db import Database, utcnow
from core.features import StasisContext
from core.settings import AsteriskNode, Settings
from hotline.callbacks import record_callback
from hotline.config import InboundConfig, InboundNumber, is_open, load_config
from hotline.models import InboundCallRecord
from hotline.transfer_gate import line_gate
from ivr.check import find_flow, load_flow
from ivr.flow import Flow
from ivr.runner import FlowResult, FlowRunner
from ivr.survey import SURVEY_FLOW, run_survey, save_score, survey_flow
from ivr.tts import PromptCache, media_uri, wav_seconds

log = logging.getLogger(__name__)

JSON = dict[str, Any]
INBOUND_ARG = "inbound"
InboundOutcome = Literal["agent", "callback", "abandoned", "caller_hangup", "ended", "rejected", "error"]


@dataclass
class InboundResult:
    channel_id: str
    number: str
    line: str | None = None
    open: bool = False
    flow: FlowResult | None = None
    bridge: HandoverResult | None = None
    callback_contact_id: int | None = None
    outcome: InboundOutcome = "error"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class InboundCall:
    """One inbound call and the parts of its node that serve it."""

    channel_id: str
    number: str
    ari: AriClient
    dispatcher: EventDispatcher
    runner: FlowRunner
    handover: Handover
    settings: Settings
    db: Database
    node: str | None = None  # the Asterisk node the call is on (its name)


def inbound_number(event: Mapping[str, Any]) -> str | None:
    """The dialled hotline number when ``event`` is an inbound call's StasisStart, else None."""
    if event.get("type") != "StasisStart":
        return None
    args = event.get("args") or []
    if len(args) >= 2 and args[0] == INBOUND_ARG:
        number = "".join(ch for ch in str(args[1]) if ch.isdigit())
        return number or None
    return None


class Hotline:
    """Serves inbound calls; one per process. Keeps the last results (newest last) for status."""

    def __init__(self, config: InboundConfig | None = None, *, now: Callable[[], datetime] = utcnow) -> None:
        self._config = config
        self.now = now
        self.results: collections.deque[InboundResult] = collections.deque(maxlen=100)

    def config(self, settings: Settings) -> InboundConfig:
        if self._config is None:
            self._config = load_config(settings.inbound_config)
        return self._config

    async def on_stasis_start(self, ctx: StasisContext, event: JSON) -> None:
        """The Stasis handler registered for ``inbound``: the channel is already subscribed."""
        channel_id = str((event.get("channel") or {}).get("id") or "")
        number = inbound_number(event)
        if number is None:
            ctx.dispatcher.unsubscribe(channel_id)
            log.warning("inbound call %s without a dialled number: hung up", channel_id)
            with contextlib.suppress(AriError):
                await ctx.ari.hangup(channel_id, reason="unallocated")
            return
        settings, db = ctx.service.settings, ctx.service.db
        runner = FlowRunner(
            ctx.ari, PromptCache.for_settings(settings), recordings_dir=settings.recordings_dir
        )
        bus = ctx.service.bus
        publish = bus.publish if bus is not None else None
        handover = Handover(HandoverDeps(ctx.ari, ctx.dispatcher, db, settings, publish=publish))
        call = InboundCall(
            channel_id, number, ctx.ari, ctx.dispatcher, runner, handover, settings, db, node=ctx.node
        )
        self.results.append(await self.handle(call))

    async def handle(self, call: InboundCall) -> InboundResult:
        """Serve one inbound call already in Stasis, from menu to agent (or callback), to hang-up."""
        result = InboundResult(channel_id=call.channel_id, number=call.number)
        arrived_at = self.now()
        events = call.dispatcher.subscribe(call.channel_id)
        try:
            await self._serve(call, events, result)
        except Exception as exc:
            log.exception("inbound call %s on %s failed", call.channel_id, call.number)
            result.outcome = "error"
            result.detail["error"] = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(AriError):
                await call.ari.hangup(call.channel_id)
        finally:
            call.dispatcher.unsubscribe(call.channel_id)
            log.info("inbound %s on %s: %s", call.channel_id, result.line or call.number, result.outcome)
        await asyncio.to_thread(_store, call.db, result, arrived_at, self.now())
        return result

    async def _serve(self, call: InboundCall, events: ChannelEvents, result: InboundResult) -> None:
        config = self.config(call.settings)
        line = config.for_number(call.number)
        if line is None:
            result.outcome = "rejected"
            with contextlib.suppress(AriError):
                await call.ari.hangup(call.channel_id, reason="unallocated")
            return
        result.line = line.name
        caller = await _answer_if_needed(call.ari, call.channel_id)
        result.open = is_open(line, self.now(), config.timezone)
        flow_name = line.flow if result.open else line.after_hours_flow
        if flow_name is None:
            with contextlib.suppress(AriError):
                await call.ari.hangup(call.channel_id)
            result.outcome = "ended"
            return
        flow = _flow(call.settings, flow_name)
        flow_result = await call.runner.run(call.channel_id, flow, {"hotline": line.name}, events)
        result.flow = flow_result
        if flow_result.outcome == "callback":
            reason = "menu" if result.open else "after_hours"
            result.callback_contact_id = await _callback(call, line, caller, reason, flow_result.recording)
            result.outcome = "callback"
        if flow_result.ended == "callee_hangup":
            result.outcome = "callback" if result.callback_contact_id else "caller_hangup"
        elif flow_result.ended == "transfer" and flow_result.transfer is not None:
            await self._to_agent(call, events, line, flow, flow_result, caller, result)
        elif result.outcome != "callback":
            result.outcome = "ended" if flow_result.ended == "hangup" else "error"

    async def _to_agent(
        self,
        call: InboundCall,
        events: ChannelEvents,
        line: InboundNumber,
        flow: Flow,
        flow_result: FlowResult,
        caller: str,
        result: InboundResult,
    ) -> None:
        assert flow_result.transfer is not None
        skill = flow_result.transfer.skill or line.skill
        request = HandoverRequest(
            call.channel_id,
            skill=None if skill == ANY_SKILL else skill,
            line=line.line_names(call.number),
            language=flow_result.transfer.language or line.language,
            min_level=line.min_level,
            origin=CallOrigin(
                attempt_id=call.channel_id,
                line=line.name,
                script=f"inbound:{line.name}",
                fields={"hotline": line.name},
            ),
            policy=QueuePolicy(
                timeout=line.queue_timeout,
                ring_timeout=line.ring_timeout,
                priority=flow_result.transfer.priority,
                announce_every=line.announce_every,
            ),
            announce=_announcer(call, flow.voice),
            number_gate=line_gate(call.db, _node(call), line.transfer_numbers),
            keep_caller=line.survey,
        )
        handed = await call.handover.connect(request)
        result.bridge = handed
        if handed.outcome == "connected":
            result.outcome = "agent"
            if handed.caller_kept:
                await self._survey(call, events, line, handed, result)
        elif handed.outcome == "abandoned":
            result.outcome = "abandoned"
            result.callback_contact_id = await _callback(call, line, caller, "queue_timeout", None)
            await _goodbye(call, events, flow.voice)
        elif handed.outcome == "caller_hangup":
            result.outcome = "caller_hangup"
        else:
            result.outcome = "error"
            result.detail["error"] = handed.error
            with contextlib.suppress(AriError):
                await call.ari.hangup(call.channel_id)

    async def _survey(
        self, call: InboundCall, events: ChannelEvents, line: InboundNumber, handed: HandoverResult,
        result: InboundResult,
    ) -> None:  # fmt: skip
        """The agent hung up first: the caller rates the call 1-5; the score is kept with the call."""
        try:
            flow = survey_flow(_flow(call.settings, SURVEY_FLOW), line.survey_comment_seconds)
            answer = await run_survey(call.runner, call.channel_id, flow, events)
        finally:
            with contextlib.suppress(AriError):
                await call.ari.hangup(call.channel_id)
        score = answer.score
        result.detail["survey"] = score
        if answer.comment:
            result.detail["survey_comment"] = answer.comment
        if score is None:
            return
        now = self.now()

        def write() -> None:
            with call.db.session() as session:
                save_score(
                    session,
                    call_ref=call.channel_id,
                    score=score,
                    agent=handed.agent,
                    line=line.name,
                    comment=answer.comment,
                    now=now,
                )

        await asyncio.to_thread(write)


def _node(call: InboundCall) -> AsteriskNode | None:
    """The node the call is on (the first configured one when it did not say)."""
    nodes = call.settings.asterisk_nodes
    return next((n for n in nodes if n.name == call.node), nodes[0] if nodes else None)


def _store(db: Database, result: InboundResult, arrived_at: datetime, ended_at: datetime) -> None:
    """Keep the call's record for staffing forecasts (a repeat of a channel is ignored)."""
    bridge = result.bridge
    with db.session() as session:
        if session.get(InboundCallRecord, result.channel_id) is not None:
            return
        session.add(
            InboundCallRecord(
                channel_id=result.channel_id,
                number=result.number,
                line=result.line,
                arrived_at=arrived_at,
                ended_at=ended_at,
                queued=bridge is not None,
                outcome=result.outcome,
                agent=bridge.agent if bridge else None,
                wait_s=bridge.wait_seconds if bridge else 0.0,
                talk_s=bridge.talk_seconds if bridge else 0.0,
            )
        )


def _flow(settings: Settings, name: str) -> Flow:
    path = find_flow(settings.var_dir, name)
    if path is None:
        raise FileNotFoundError(f"IVR flow {name!r} not found in var/flows or config/ivr")
    return load_flow(path)


async def _answer_if_needed(ari: AriClient, channel_id: str) -> str:
    channel = await ari.get_channel(channel_id)
    if channel.get("state") != "Up":
        await ari.answer(channel_id)
    caller = channel.get("caller") or {}
    return str(caller.get("number") or "")


def _announcer(call: InboundCall, voice: str) -> Announce:
    async def announce(position: int) -> None:
        text = "您是下一位，请稍候。" if position <= 1 else f"您前面还有{position - 1}位来电，请耐心等候。"
        try:
            path = await call.runner.prompts.speak(text, voice)
            await call.ari.play(call.channel_id, media_uri(path))
            await asyncio.sleep(wav_seconds(path) + 0.3)  # the announcement plays out
        except Exception as exc:  # an announcement must never drop the caller from the queue
            log.info("queue announcement for %s failed: %s", call.channel_id, exc)

    return announce


async def _callback(
    call: InboundCall, line: InboundNumber, caller: str, reason: str, message: str | None
) -> int | None:
    def write() -> int | None:
        with call.db.session() as session:
            return record_callback(
                session,
                campaign_name=line.callback_campaign,
                phone=caller,
                hotline=call.number,
                reason=reason,
                message=message,
                region=call.settings.default_region,
            )

    return await asyncio.to_thread(write)


async def _goodbye(call: InboundCall, events: ChannelEvents, voice: str) -> None:
    """No agent in time: say a callback is booked, then end the call."""
    try:
        path = await call.runner.prompts.speak(
            "现在坐席繁忙，我们已为您预约回电，会尽快与您联系。再见。", voice
        )
        await call.ari.play(call.channel_id, media_uri(path))
        await events.wait_for(
            lambda e: e.get("type") in ("PlaybackFinished", "StasisEnd", "ChannelDestroyed"),
            timeout=wav_seconds(path) + 5,
        )
    except Exception as exc:
        log.info("goodbye prompt for %s failed: %s", call.channel_id, exc)
    with contextlib.suppress(AriError):
        await call.ari.hangup(call.channel_id)
