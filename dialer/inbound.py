"""The inbound hotline: caller -> IVR menu -> queue by skill -> agent (recorded), an after-hours
flow when closed, and callback requests kept as contacts of a callback campaign.

The dialer runtime owns the app's one event stream; an inbound call's ``StasisStart`` (args
``inbound,<number>``, from the ``lab-inbound`` context or a trunk's) reaches nobody's
subscription, so it arrives at the dispatcher's ``unrouted`` callback. :func:`attach` hooks
:func:`handle_inbound` there (``DialerWorker.unrouted_handlers``); anything else that owns a
dispatcher can call :func:`on_unrouted` itself (the tests do).

    result = await handle_inbound(ctx, channel_id, "12345")

Configuration: ``settings.inbound_config`` (``config/inbound/hotline.yaml``): per number the menu
flow, a fallback skill, opening hours, the after-hours flow and the callback campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from agents.routing import ANY_SKILL
from core.ari import AriClient, AriError
from core.audit import audit
from core.db import Database, utcnow
from core.settings import Settings
from dialer.bridge import BridgeResult, connect_to_agent
from ivr.check import load_flow
from core.ari_events import ChannelEvents, EventDispatcher
from ivr.flow import Flow
from ivr.runner import FlowResult, FlowRunner
from ivr.tts import media_uri, wav_seconds

log = logging.getLogger(__name__)

JSON = dict[str, Any]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REPO_FLOWS = Path(__file__).resolve().parents[1] / "config" / "ivr"
INBOUND_ARG = "inbound"
CALLBACK_ACTOR = "inbound"


# ---------------------------------------------------------------- configuration


def _day_keys(key: str) -> tuple[str, ...]:
    key = key.strip().lower()
    if key in ("daily", "every day", "all"):
        return DAYS
    if "-" in key:
        first, last = (k.strip() for k in key.split("-", 1))
        if first not in DAYS or last not in DAYS:
            raise ValueError(f"unknown day range {key!r} (use mon..sun, e.g. mon-fri)")
        i, j = DAYS.index(first), DAYS.index(last)
        return DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
    if key not in DAYS:
        raise ValueError(f"unknown day {key!r} (use mon..sun, a range like mon-fri, or daily)")
    return (key,)


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(p.strip()) for p in text.split("-", 1))
    except ValueError as exc:
        raise ValueError(f"opening hours {text!r}: write HH:MM-HH:MM") from exc
    if end <= start:
        raise ValueError(f"opening hours {text!r}: the end is not after the start")
    return start, end


class InboundNumber(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    flow: str = "hotline_menu"
    skill: str = ANY_SKILL
    after_hours_flow: str | None = "after_hours"
    callback_campaign: str = Field(default="hotline-callbacks", min_length=1, max_length=64)
    queue_timeout: float = Field(default=180.0, gt=0, le=3600)
    ring_timeout: int = Field(default=20, ge=5, le=120)
    announce_every: float = Field(default=30.0, ge=5, le=600)
    hours: dict[str, list[str]] = Field(default_factory=lambda: {"daily": ["00:00-23:59"]})
    closed_dates: list[date] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, spans in value.items():
            _day_keys(key)
            for span in spans:
                _span(span)
        return value

    def spans(self, day: str) -> list[tuple[time, time]]:
        out: list[tuple[time, time]] = []
        for key, spans in self.hours.items():
            if day in _day_keys(key):
                out.extend(_span(s) for s in spans)
        return out


class InboundConfig(BaseModel):
    timezone: str = "Asia/Shanghai"
    numbers: dict[str, InboundNumber] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    def for_number(self, number: str) -> InboundNumber | None:
        return self.numbers.get(number) or self.numbers.get("default")


def load_config(path: Path) -> InboundConfig:
    """Read the inbound configuration; a missing file means no numbers (every call: default)."""
    if not path.exists():
        return InboundConfig()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    numbers = {str(k): v for k, v in (raw.get("numbers") or {}).items()}
    return InboundConfig.model_validate({**raw, "numbers": numbers})


def is_open(cfg: InboundNumber, now: datetime, tz: str) -> bool:
    """Whether the hotline answers with agents at ``now`` (local time in ``tz``)."""
    local = now.astimezone(ZoneInfo(tz))
    if local.date() in cfg.closed_dates:
        return False
    moment = local.time().replace(tzinfo=None)
    return any(start <= moment < end for start, end in cfg.spans(DAYS[local.weekday()]))


# ---------------------------------------------------------------- callbacks


def record_callback(
    session: Any,
    *,
    campaign_name: str,
    phone: str | None,
    hotline: str,
    reason: str,
    message: str | None = None,
    region: str = "CN",
) -> int | None:
    """Keep a callback request as a pending contact of ``campaign_name`` (created on demand: an
    agent campaign, draft). Returns the contact id, or None when the caller's number is unusable
    (withheld or not a phone number) -- logged, and audited so a supervisor can see it."""
    from dialer import campaigns
    from dialer.lists.phones import mask, normalise
    from dialer.models import Campaign, Contact, ContactState

    parsed = normalise(phone or "", region=region, allowed=None)
    campaign = session.scalar(select(Campaign).where(Campaign.name == campaign_name))
    if campaign is None:
        spec = campaigns.build_spec(
            {
                "name": campaign_name,
                "kind": "agent",
                "description": "Callback requests left on the inbound hotline",
            }
        )
        campaign = campaigns.create_campaign(session, spec, actor=CALLBACK_ACTOR)
    if parsed.e164 is None:
        audit(
            session,
            CALLBACK_ACTOR,
            "inbound.callback.unusable",
            campaign_name,
            hotline=hotline,
            reason=reason,
        )
        log.warning("callback request on %s without a usable caller number (%s)", hotline, parsed.reason)
        return None
    now = utcnow()
    fields = {"hotline": hotline, "reason": reason, "requested_at": now.isoformat(timespec="seconds")}
    if message:
        fields["message"] = message
    contact = session.scalar(
        select(Contact).where(Contact.campaign_id == campaign.id, Contact.phone_e164 == parsed.e164)
    )
    if contact is None:
        contact = Contact(
            campaign_id=campaign.id,
            phone_e164=parsed.e164,
            name=None,
            fields=fields,
            state=ContactState.pending,
            next_due_at=now,
        )
        session.add(contact)
    else:  # asked again: one contact, due now, the latest request's details
        contact.fields = {**(contact.fields or {}), **fields}
        if contact.state is not ContactState.in_progress:
            contact.state = ContactState.pending
            contact.next_due_at = now
    session.flush()
    audit(
        session,
        CALLBACK_ACTOR,
        "inbound.callback",
        f"contact:{contact.id}",
        campaign=campaign_name,
        phone=mask(parsed.e164),
        reason=reason,
    )
    return int(contact.id)


# ---------------------------------------------------------------- the call


@dataclass
class InboundContext:
    """What a handler needs: the node's client, its dispatcher and flow runner, settings, db."""

    ari: AriClient
    dispatcher: EventDispatcher
    runner: FlowRunner
    settings: Settings
    db: Database
    config: InboundConfig | None = None
    now: Callable[[], datetime] = utcnow
    flow_dirs: tuple[Path, ...] = ()

    def inbound_config(self) -> InboundConfig:
        if self.config is None:
            self.config = load_config(self.settings.inbound_config)
        return self.config

    def flow(self, name: str) -> Flow:
        for folder in (*self.flow_dirs, self.settings.var_dir / "flows", REPO_FLOWS):
            for stem in dict.fromkeys((name, name.replace("-", "_"))):
                path = folder / f"{stem}.yaml"
                if path.is_file():
                    return load_flow(path)
        raise FileNotFoundError(f"IVR flow {name!r} not found in var/flows or config/ivr")


@dataclass
class InboundResult:
    channel_id: str
    number: str
    line: str | None = None
    open: bool = False
    flow: FlowResult | None = None
    bridge: BridgeResult | None = None
    callback_contact_id: int | None = None
    outcome: Literal["agent", "callback", "abandoned", "caller_hangup", "ended", "rejected", "error"] = (
        "error"
    )
    detail: dict[str, Any] = field(default_factory=dict)


async def _answer_if_needed(ari: AriClient, channel_id: str) -> str:
    channel = await ari.get_channel(channel_id)
    if channel.get("state") != "Up":
        await ari.answer(channel_id)
    caller = channel.get("caller") or {}
    return str(caller.get("number") or "")


def _announcer(ctx: InboundContext, channel_id: str, voice: str) -> Callable[[int], Any]:
    async def announce(position: int) -> None:
        text = "您是下一位，请稍候。" if position <= 1 else f"您前面还有{position - 1}位来电，请耐心等候。"
        try:
            path = await ctx.runner.prompts.speak(text, voice)
            await ctx.ari.play(channel_id, media_uri(path))
            await asyncio.sleep(wav_seconds(path) + 0.3)
        except Exception as exc:  # an announcement must never drop the caller from the queue
            log.info("queue announcement for %s failed: %s", channel_id, exc)

    return announce


async def handle_inbound(ctx: InboundContext, channel_id: str, number: str) -> InboundResult:
    """Serve one inbound call already in Stasis, from menu to agent (or callback), to hang-up."""
    result = InboundResult(channel_id=channel_id, number=number)
    cfg_all = ctx.inbound_config()
    line = cfg_all.for_number(number)
    events = ctx.dispatcher.subscribe(channel_id)
    try:
        if line is None:
            result.outcome = "rejected"
            with contextlib.suppress(AriError):
                await ctx.ari.hangup(channel_id, reason="unallocated")
            return result
        result.line = line.name
        caller = await _answer_if_needed(ctx.ari, channel_id)
        result.open = is_open(line, ctx.now(), cfg_all.timezone)
        flow_name = line.flow if result.open else line.after_hours_flow
        if flow_name is None:
            with contextlib.suppress(AriError):
                await ctx.ari.hangup(channel_id)
            result.outcome = "ended"
            return result
        flow = ctx.flow(flow_name)
        flow_result = await ctx.runner.run(channel_id, flow, {"hotline": line.name}, events)
        result.flow = flow_result
        if flow_result.outcome == "callback":
            reason = "menu" if result.open else "after_hours"
            result.callback_contact_id = await _callback(
                ctx, line, caller, number, reason, flow_result.recording
            )
            result.outcome = "callback"
        if flow_result.ended == "callee_hangup":
            result.outcome = "callback" if result.callback_contact_id else "caller_hangup"
            return result
        if flow_result.ended == "transfer" and flow_result.transfer is not None:
            skill = flow_result.transfer.skill or line.skill
            bridge = await connect_to_agent(
                ctx.ari,
                ctx.dispatcher,
                channel_id,
                skill=None if skill == ANY_SKILL else skill,
                db=ctx.db,
                settings=ctx.settings,
                campaign=None,
                timeout=line.queue_timeout,
                ring_timeout=line.ring_timeout,
                priority=flow_result.transfer.priority,
                script=f"inbound:{line.name}",
                attempt_id=channel_id,
                announce=_announcer(ctx, channel_id, flow.voice),
                announce_every=line.announce_every,
                contact_fields={"hotline": line.name},
            )
            result.bridge = bridge
            if bridge.outcome == "connected":
                result.outcome = "agent"
            elif bridge.outcome == "abandoned":
                result.outcome = "abandoned"
                result.callback_contact_id = await _callback(ctx, line, caller, number, "queue_timeout", None)
                await _goodbye(ctx, channel_id, events, flow.voice)
            elif bridge.outcome == "caller_hangup":
                result.outcome = "caller_hangup"
            else:
                result.outcome = "error"
                result.detail["error"] = bridge.error
                with contextlib.suppress(AriError):
                    await ctx.ari.hangup(channel_id)
            return result
        if result.outcome != "callback":
            result.outcome = "ended" if flow_result.ended == "hangup" else "error"
        return result
    except Exception as exc:
        log.exception("inbound call %s on %s failed", channel_id, number)
        result.outcome = "error"
        result.detail["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(AriError):
            await ctx.ari.hangup(channel_id)
        return result
    finally:
        ctx.dispatcher.unsubscribe(channel_id)
        log.info("inbound %s on %s: %s", channel_id, result.line or number, result.outcome)


async def _callback(
    ctx: InboundContext, line: InboundNumber, caller: str, number: str, reason: str, message: str | None
) -> int | None:
    def write() -> int | None:
        with ctx.db.session() as session:
            return record_callback(
                session,
                campaign_name=line.callback_campaign,
                phone=caller,
                hotline=number,
                reason=reason,
                message=message,
                region=ctx.settings.default_region,
            )

    return await asyncio.to_thread(write)


async def _goodbye(ctx: InboundContext, channel_id: str, events: ChannelEvents, voice: str) -> None:
    """No agent in time: say a callback is booked, then end the call."""
    try:
        path = await ctx.runner.prompts.speak(
            "现在坐席繁忙，我们已为您预约回电，会尽快与您联系。再见。", voice
        )
        await ctx.ari.play(channel_id, media_uri(path))
        await events.wait_for(
            lambda e: e.get("type") in ("PlaybackFinished", "StasisEnd", "ChannelDestroyed"),
            timeout=wav_seconds(path) + 5,
        )
    except Exception as exc:
        log.info("goodbye prompt for %s failed: %s", channel_id, exc)
    with contextlib.suppress(AriError):
        await ctx.ari.hangup(channel_id)


# ---------------------------------------------------------------- wiring


def inbound_args(event: Mapping[str, Any]) -> str | None:
    """The dialled hotline number when ``event`` is an inbound call's StasisStart, else None."""
    if event.get("type") != "StasisStart":
        return None
    args = event.get("args") or []
    if len(args) >= 2 and args[0] == INBOUND_ARG:
        number = "".join(ch for ch in str(args[1]) if ch.isdigit())
        return number or None
    return None


class InboundCalls:
    """Starts a handler task per inbound StasisStart; keeps the tasks so none is collected."""

    def __init__(self, ctx_for: Callable[[str], InboundContext | None]) -> None:
        self.ctx_for = ctx_for
        self.tasks: set[asyncio.Task[InboundResult]] = set()
        self.results: list[InboundResult] = []

    def on_unrouted(self, node: str, event: JSON) -> None:
        number = inbound_args(event)
        channel_id = (event.get("channel") or {}).get("id")
        if number is None or not channel_id:
            return
        ctx = self.ctx_for(node)
        if ctx is None:
            log.warning("inbound call %s on node %s: no context to serve it", channel_id, node)
            return
        # Subscribe now, synchronously, so no event of this call is missed before the task runs.
        ctx.dispatcher.subscribe(channel_id)
        task = asyncio.ensure_future(handle_inbound(ctx, channel_id, number))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[InboundResult]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.results.append(task.result())
            del self.results[:-100]


def attach(worker: Any) -> InboundCalls:
    """Serve inbound calls from a ``DialerWorker``: its nodes' clients, dispatchers and runners.
    Idempotent: attaching twice returns the first attachment (one handler per call, never two)."""
    existing = getattr(worker, "inbound_calls", None)
    if isinstance(existing, InboundCalls):
        return existing

    def ctx_for(node: str) -> InboundContext | None:
        link = worker.nodes.get(node)
        if link is None:
            return None
        return InboundContext(link.ari, link.dispatcher, link.runner, worker.settings, worker.db)

    calls = InboundCalls(ctx_for)
    worker.unrouted_handlers.append(calls.on_unrouted)
    worker.inbound_calls = calls
    return calls
