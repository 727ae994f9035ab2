"""A connected call while it lasts: the caller, the agent with them, and any transfer they ask for.

The hand-over (agents.handover) and an agent's own call (agents.placed_calls) both bridge the
caller with an agent and then let a :class:`Conversation` run until the call is over. It reads the
call's one event queue: Asterisk's events and the agent's transfer steps (``WarmlineTransfer``,
from agents.transfer.inbox). Every leg stays in Stasis under the service's control:

- **attended** (consult first): the caller leaves the bridge and hears music on hold; the agent
  leaves it too and hears ringing while the target is rung (a colleague's phone with the call's
  screen pop, script ticket and its own stereo recording; an agent of a skill queue chosen by
  routing; or an outside number the call's owner allows, through its ``number_gate``). When the
  target answers, agent and target talk in a consult bridge. **complete** hangs up the agent and
  puts the target in the caller's bridge; **cancel** (or the target hanging up / not answering /
  declining) puts the agent back with the caller. The agent hanging up while consulting completes
  the transfer; while the target still rings, it becomes a blind one.
- **blind**: the agent leaves at once; the caller hears music on hold until the target answers. A
  queue is the hand-over's own queue (the caller waits there, the screen pop and script go with
  the call). A blind transfer whose target does not answer goes to the call's queue, so the caller
  is still helped.
- The caller hanging up at any point ends everything; the agents' legs are hung up.
- **A nailed-up agent** (agents.handover.nailed: the caller came into the agent's holding bridge)
  is a party with a ``home``, that bridge: their leg is never hung up by the call. Leaving the
  call (a transfer done, blind or completed) puts the leg back in its home and tells the call's
  owner (``left_call``: the agent takes the next callee there); a consult takes the leg out of
  its home and a cancel puts it back with the caller. The caller never joins a colleague in the
  agent's home: the first time a target takes the caller, the caller gets a bridge of its own.
- A target whose phone holds a nailed leg is rung all the same: ``free_phone`` hangs that leg up
  first (the agent is nailed up again at their next availability).

Each step and its end are written on the transfer's row. The agent who has the caller at the end
wraps the call up: ``on_agent`` tells the call's owner (the dialer notes the agent on the attempt).
The agent who handed the caller to a colleague is made available; one who handed them to an
outside number keeps the wrap-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from agents import routing
from agents.handover.call import AgentTook, CallOrigin, HandoverResult
from agents.handover.screen_pop import header_value, screen_pop_headers
from agents.transfer.inbox import TRANSFER_EVENT, inbox_for
from agents.transfer.models import Transfer
from agents.transfer.service import CONSULT_REASON, TransferRefused
from core.ari import RECONNECTED, AriClient, AriError
from core.ari_events import HANGUP_EVENTS, ChannelEvents, EventDispatcher
from core.call_tickets import mint, ticket_secret
from core.db import Database, utcnow
from core.settings import Settings
from recordings.capture import RecordingFacts, StereoCapture

log = logging.getLogger(__name__)

JSON = dict[str, Any]
RECORD_CONTEXT = "warmline-record"
LEG_GONE = frozenset({"ChannelDestroyed", "ChannelHangupRequest"})
TRANSFER_ARG = "transfer"  # the Stasis argument of an outside number's leg
RINGBACK = "tone:ring"
POLL = 5.0  # seconds between checks that legs whose end we may have missed are still there
# A caller a check finds gone has usually hung up a moment ago, their hang-up's events still on
# the socket (which lags HTTP answers on a busy server): waited for this long, they bring the cause
# and the end of the bridged span on Asterisk's clock (where a nailed call's recording ends).
LATE_HANGUP_S = 1.0
TRANSFERRED = "transferred"  # the state reason of an agent who handed the caller on

NumberGate = Callable[[str, str], Awaitable[str]]
"""(call_ref, number or directory name) -> the ARI endpoint to dial; raises TransferRefused (code
``not_allowed``, ``dnc``, ``outside_window``) when the call's campaign does not allow it now."""
Requeue = Callable[[str | None, AgentTook, frozenset[str]], Awaitable[HandoverResult]]
"""Put the caller in a skill's queue (the hand-over), never offered again to the agents named (who
handed them on); returns when that call is over."""
Ended = Literal["agent", "customer", "system"]


@dataclass
class Party:
    """One agent's (or an outside number's) leg on the call."""

    agent: str | None  # None: an outside number
    leg: str
    reserved_at: datetime | None = None
    capture: StereoCapture | None = None
    recording_id: str | None = None
    done: bool = False
    home: str | None = None  # a nailed-up agent's holding bridge: the leg lives there, never hung up


@dataclass
class TalkDeps:
    """What the conversation needs from its process (the hand-over's deps give them)."""

    ari: AriClient
    dispatcher: EventDispatcher
    db: Database
    settings: Settings
    clock: Callable[[], float]
    now: Callable[[], datetime] = utcnow


@dataclass
class TalkHooks:
    """What the call's owner does for it."""

    facts: Callable[[str], RecordingFacts]  # the recording row's facts for this agent
    on_agent: AgentTook | None = None  # the call is this agent's now (their wrap-up)
    requeue: Requeue | None = None
    number_gate: NumberGate | None = None
    left_call: Callable[[Party], Awaitable[None]] | None = None  # a nailed agent is off the call
    free_phone: Callable[[str], Awaitable[None]] | None = None  # hang up the agent's nailed leg
    seen: Callable[[JSON], None] | None = None  # every Asterisk event of the call, as it is read


@dataclass
class _Pending:
    """The transfer under way: its row, its target's leg, the consult bridge once answered."""

    id: str
    kind: str
    mode: str
    target: str
    party: Party | None = None
    bridge: str | None = None
    state: Literal["ringing", "consulting"] = "ringing"
    ringback: str | None = None


@dataclass
class Conversation:
    """The caller (``customer``) in ``bridge`` with ``first``; run it until the call is over."""

    deps: TalkDeps
    events: ChannelEvents
    call_ref: str
    customer: str
    bridge: str
    origin: CallOrigin
    skill: str | None
    first: Party
    hooks: TalkHooks
    active: Party | None = None
    parties: list[Party] = field(default_factory=list)
    pending: _Pending | None = None
    customer_gone: bool = False
    requeued: HandoverResult | None = None
    customer_cause: int | None = None
    holders: list[str] = field(default_factory=list)  # the agents who had the caller, in turn
    bridges: list[str] = field(default_factory=list)  # bridges made for the caller (destroyed at close)
    _moh: bool = False
    _caller_missing_since: float | None = None  # a check found the caller gone; events not in yet
    _recording: list[asyncio.Task[None]] = field(default_factory=list)  # recordings being finished

    def __post_init__(self) -> None:
        self.active = self.first
        self.parties = [self.first]
        self.holders = [self.first.agent] if self.first.agent else []

    @property
    def last_agent(self) -> str | None:
        """The agent who had the caller last (their wrap-up)."""
        if self.requeued is not None and self.requeued.agent:
            return self.requeued.agent
        return self.holders[-1] if self.holders else self.first.agent

    def live_legs(self) -> list[str]:
        """The legs still on the call that end with it (a nailed agent's leg never does)."""
        return [p.leg for p in self.parties if not p.done and p.home is None]

    # ---------------------------------------------------------------- the loop

    async def run(self) -> Ended:
        inbox = inbox_for(self.deps.db, self.deps.now)
        inbox.watch(self.call_ref, self.events)
        try:
            return await self._loop()
        finally:
            inbox.unwatch(self.call_ref, self.events)

    async def _loop(self) -> Ended:
        while True:
            if self.requeued is not None:
                return self.requeued.ended_by or "system"
            event = await self._next(self._wait())
            try:
                if event is None or event.get("type") == RECONNECTED:
                    ended = await self._check_legs()
                elif event.get("type") == TRANSFER_EVENT:
                    ended = await self._step(event["transfer"])
                else:
                    if self.hooks.seen is not None:
                        self.hooks.seen(event)
                    ended = await self._on_event(event)
            except AriError as exc:  # a leg went away mid-step: the agent keeps the caller if they can
                log.warning("call %s: transfer step failed: %s", self.call_ref, exc)
                ended = await self._recover()
            if ended is not None:
                return ended

    def _wait(self) -> float:
        """How long to wait for the next event before checking the legs."""
        if self._caller_missing_since is None:
            return POLL
        return max(0.0, self._caller_missing_since + LATE_HANGUP_S - self.deps.clock())

    async def _next(self, timeout: float) -> JSON | None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await self.events.get()
        except TimeoutError:
            return None

    async def _on_event(self, event: JSON) -> Ended | None:
        kind = event.get("type")
        about = (event.get("channel") or {}).get("id")
        if about == self.customer and kind in HANGUP_EVENTS:
            self.customer_cause = _cause(event) or self.customer_cause
            return await self._caller_left()
        pending = self.pending
        if pending is not None and pending.party is not None and about == pending.party.leg:
            if kind == "StasisStart" and pending.state == "ringing":
                await self._target_answered(pending)
            elif kind == "ChannelDestroyed" or (kind in LEG_GONE and pending.state == "consulting"):
                # Ringing, wait for ChannelDestroyed: it carries the cause (busy, declined).
                return await self._target_left(pending, _cause(event))
            return None
        active = self.active
        if active is not None and about == active.leg and kind in HANGUP_EVENTS:
            return await self._agent_left(active)
        return None

    async def _check_legs(self) -> Ended | None:
        """No event for a while (or a reconnect): are the legs we count on still there?"""
        if not await self._alive(self.customer):
            if self._caller_missing_since is None:
                self._caller_missing_since = self.deps.clock()  # their events a moment behind
                return None
            return await self._caller_left()
        pending = self.pending
        if pending is not None and pending.party is not None and not await self._alive(pending.party.leg):
            return await self._target_left(pending, None)
        active = self.active
        if active is not None and not await self._alive(active.leg):
            return await self._agent_left(active)
        return None

    # ---------------------------------------------------------------- the agent's steps

    async def _step(self, step: JSON) -> Ended | None:
        action = step.get("action")
        if action == "start":
            return await self._start(step)
        pending = self.pending
        if pending is None or pending.id != step.get("id"):
            return None  # a step for a transfer already over (it ended on its own meanwhile)
        if action == "complete":
            return await self._complete(pending)
        if action == "cancel":
            await self._back_to_agent(pending, "cancelled", state="cancelled")
        return None

    async def _start(self, step: JSON) -> Ended | None:
        xfer, kind, mode = str(step["id"]), str(step["kind"]), str(step["mode"])
        active = self.active
        if active is None or active.agent != step.get("from_agent"):
            await self._mark(xfer, state="failed", result="not_your_call", ended=True)
            return None
        if self.pending is not None:
            await self._mark(xfer, state="failed", result="transfer_in_progress", ended=True)
            return None
        pending = _Pending(xfer, kind, mode, str(step["target"]))
        if kind == "queue" and mode == "blind":
            return await self._to_queue(pending, active, str(step["target"]))
        target = await self._resolve(pending, step)
        if target is None:
            return None
        self.pending = pending
        await self._hold_caller()
        if mode == "attended":
            await self._remove(self.bridge, active.leg)
            pending.ringback = await self._play_ringback(active.leg)
        else:
            await self._agent_leaves(active, handed_to=kind)
        if not await self._ring(pending, target):
            return await self._target_left(pending, None, result="error")
        await self._mark(xfer, state="ringing", rung_agent=target[1].agent if target[1] else None)
        return None

    async def _resolve(
        self, pending: _Pending, step: JSON
    ) -> tuple[str, routing.AgentCandidate | None] | None:
        """The endpoint to ring (and the reserved agent), or None when the transfer cannot start
        (its row then says why)."""
        if pending.kind == "number":
            gate = self.hooks.number_gate
            try:
                if gate is None:
                    raise TransferRefused(409, "not_allowed", "no outside numbers on this call")
                return await gate(self.call_ref, str(step.get("number") or step["target"])), None
            except TransferRefused as exc:
                await self._mark(pending.id, state="failed", result=exc.code, ended=True)
                return None
        exclude = {p.agent for p in self.parties if p.agent and not p.done}  # who is on the call now
        name = pending.target if pending.kind == "agent" else None
        agent = await self._reserve(name, None if name else pending.target, exclude)
        if agent is None:
            result = "busy" if name else "no_agent"
            await self._mark(pending.id, state="failed", result=result, ended=True)
            return None
        if self.hooks.free_phone is not None:  # reserved now: their nailed leg (if any) can go
            try:
                await self.hooks.free_phone(agent.agent)
            except Exception:
                log.exception("freeing %s's phone for transfer %s failed", agent.agent, pending.id)
        return f"PJSIP/{agent.endpoint}", agent

    async def _ring(self, pending: _Pending, target: tuple[str, routing.AgentCandidate | None]) -> bool:
        endpoint, agent = target
        leg = f"xfer-{uuid.uuid4()}"
        party = Party(agent.agent if agent else None, leg, reserved_at=self.deps.now())
        pending.party = party
        self.parties.append(party)
        self.deps.dispatcher.alias(self.customer, leg)
        try:
            if agent is not None:
                party.capture = StereoCapture.plan(self.deps.settings.recordings_dir, now=self.deps.now())
                await party.capture.begin(self.hooks.facts(agent.agent))
                await self.deps.ari.originate(
                    endpoint,
                    channel_id=leg,
                    context=RECORD_CONTEXT,
                    extension="s",
                    priority=1,
                    variables={
                        "WARMLINE_REC_FILE": party.capture.base,
                        **self._headers(agent.agent, pending.id),
                    },
                    timeout=self.deps.settings.agent_ring_timeout,
                    caller_id=f'"{self.origin.campaign or self.origin.line or "warmline"}" <warmline>',
                )
            else:
                await self.deps.ari.originate(
                    endpoint,
                    channel_id=leg,
                    app=self.deps.ari.app,
                    app_args=TRANSFER_ARG,
                    timeout=self.deps.settings.dialer_ring_timeout,
                )
        except AriError as exc:
            log.warning("transfer %s: ringing %s failed: %s", pending.id, endpoint, exc)
            with contextlib.suppress(AriError):  # the request may have got through
                await self.deps.ari.hangup(leg)
            await self._finish(party, "available", "transfer_failed", keep_recording=False)
            return False
        with contextlib.suppress(AriError):
            await self.deps.ari.subscribe(f"channel:{leg}")
        return True

    def _headers(self, agent: str, xfer: str) -> dict[str, str]:
        """The call's screen pop for the colleague, their ticket to its script and form, who hands
        it over and the transfer (their phone reads whether they got the caller or only a consult)."""
        headers = screen_pop_headers(self.origin, skill=self.skill, attempt=self.call_ref)
        ticket = mint(
            ticket_secret(self.deps.settings.var_dir),
            call_ref=self.call_ref,
            agent=agent,
            now=self.deps.now(),
            campaign=self.origin.campaign,
            line=self.origin.line,
        )
        headers["PJSIP_HEADER(add,X-Warmline-Ticket)"] = header_value(ticket)
        if self.active is not None and self.active.agent:
            headers["PJSIP_HEADER(add,X-Warmline-Transfer-From)"] = header_value(self.active.agent)
        headers["PJSIP_HEADER(add,X-Warmline-Transfer-Id)"] = header_value(xfer)
        return headers

    # ---------------------------------------------------------------- what happens to the target

    async def _target_answered(self, pending: _Pending) -> None:
        party = pending.party
        assert party is not None
        if pending.mode == "blind" or self.active is None:
            await self._join(pending, party)
            return
        await self._stop_ringback(pending)
        bridge = f"consult-{uuid.uuid4()}"
        self.deps.dispatcher.alias(self.customer, bridge)
        await self.deps.ari.create_bridge("mixing", bridge_id=bridge, name=f"consult-{self.call_ref}"[:60])
        pending.bridge = bridge
        await self.deps.ari.add_channel(bridge, [self.active.leg, party.leg])
        pending.state = "consulting"
        await self._mark(pending.id, state="consulting", answered=True)

    async def _complete(self, pending: _Pending) -> Ended | None:
        active = self.active
        if active is not None:
            await self._agent_leaves(active, handed_to=pending.kind)
        if pending.state == "ringing":
            pending.mode = "blind"  # the caller waits for the target alone
            await self._stop_ringback(pending)
            return None
        assert pending.party is not None
        await self._join(pending, pending.party)
        return None

    async def _join(self, pending: _Pending, party: Party) -> None:
        """The target takes the caller: into the caller's bridge; the transfer is complete."""
        if pending.bridge is not None:
            await self._remove(pending.bridge, party.leg)
            with contextlib.suppress(AriError):
                await self.deps.ari.destroy_bridge(pending.bridge)
        if any(p.home == self.bridge for p in self.parties):
            await self._own_bridge()
        await self._unhold_caller()
        await self.deps.ari.add_channel(self.bridge, [self.customer, party.leg])
        self.pending = None
        self.active = party
        if party.agent is not None:
            self.holders.append(party.agent)
        # The call is the colleague's before the transfer says it is done: whoever reads a
        # completed transfer finds its call with its new agent (a lab run read between the two).
        if party.agent is not None and self.hooks.on_agent is not None:
            try:
                await self.hooks.on_agent(party.agent)
            except Exception:
                log.exception("noting agent %s on call %s failed", party.agent, self.call_ref)
        await self._mark(pending.id, state="completed", result="answered", to_agent=party.agent,
                         answered=pending.state == "ringing", ended=True)  # fmt: skip

    async def _target_left(
        self, pending: _Pending, cause: int | None, result: str | None = None
    ) -> Ended | None:
        """The target hung up, declined, was busy or did not answer (or could not be rung)."""
        answered = pending.state == "consulting"
        result = result or ("target_hangup" if answered else _failure(cause))
        if self.active is not None:
            state = "cancelled" if answered else "failed"
            await self._back_to_agent(pending, result, state=state)
            return None
        # Blind, or the agent left while it rang: the caller is still to be helped.
        await self._end_target(pending, result)
        self.pending = None
        await self._mark(pending.id, state="failed", result=result, ended=True)
        if self.hooks.requeue is None:
            return "system"
        return await self._requeue(self.skill, None)

    async def _back_to_agent(self, pending: _Pending, result: str, *, state: str) -> None:
        """Consultation over: the target's leg ends, the agent is with the caller again."""
        await self._stop_ringback(pending)
        await self._end_target(pending, result)
        active = self.active
        self.pending = None
        if pending.bridge is not None and active is not None:
            await self._remove(pending.bridge, active.leg)
            with contextlib.suppress(AriError):
                await self.deps.ari.destroy_bridge(pending.bridge)
        await self._unhold_caller()
        legs = [self.customer] + ([active.leg] if active is not None else [])
        with contextlib.suppress(AriError):
            await self.deps.ari.add_channel(self.bridge, legs)
        await self._mark(pending.id, state=state, result=result, ended=True)

    async def _end_target(self, pending: _Pending, result: str) -> None:
        party = pending.party
        if party is None or party.done:
            return
        with contextlib.suppress(AriError):
            await self.deps.ari.hangup(party.leg)
        talked = pending.state == "consulting"
        if party.agent is None:
            party.done = True
            return
        if result == "no_answer":
            await self._finish(party, "break", "no_answer", keep_recording=False)
        else:
            await self._finish(party, "available", "consult_ended", keep_recording=talked)

    # ---------------------------------------------------------------- the agents leaving

    async def _agent_left(self, active: Party) -> Ended | None:
        """The agent with the caller hung up."""
        pending = self.pending
        if pending is None:
            return "agent"
        # Mid-transfer: hanging up hands the caller on (as a desk phone's transfer key does).
        if pending.state == "consulting":
            return await self._complete(pending)
        await self._agent_leaves(active, handed_to=pending.kind)
        await self._stop_ringback(pending)
        pending.mode = "blind"
        return None

    async def _agent_leaves(self, party: Party, *, handed_to: str) -> None:
        """The agent's part is over: their leg ends (a nailed agent's goes back to its holding
        bridge), their recording is kept; they are free again when a colleague takes the caller,
        and wrap up when an outside number does."""
        self.active = None
        if party.home is not None:
            await self._go_home(party)
        else:
            with contextlib.suppress(AriError):
                await self.deps.ari.hangup(party.leg)
        if handed_to == "number":
            await self._finish(party, "wrap_up", TRANSFERRED)
        else:
            await self._finish(party, "available", TRANSFERRED)
        if party.home is not None and self.hooks.left_call is not None:
            try:
                await self.hooks.left_call(party)
            except Exception:
                log.exception("call %s: freeing %s's nailed line failed", self.call_ref, party.agent)

    async def _go_home(self, party: Party) -> None:
        """A nailed agent's leg back into their holding bridge, out of the call's bridges."""
        assert party.home is not None
        pending = self.pending
        if pending is not None and pending.bridge is not None:
            await self._remove(pending.bridge, party.leg)
        if self.bridge != party.home:
            await self._remove(self.bridge, party.leg)
        with contextlib.suppress(AriError):
            await self.deps.ari.add_channel(party.home, party.leg)

    async def _own_bridge(self) -> None:
        """The caller leaves a nailed agent's holding bridge for one of the call's own."""
        bridge = f"call-{uuid.uuid4()}"
        self.deps.dispatcher.alias(self.customer, bridge)
        await self.deps.ari.create_bridge("mixing", bridge_id=bridge, name=f"call-{self.call_ref}"[:60])
        old, self.bridge = self.bridge, bridge
        self.bridges.append(bridge)
        await self._remove(old, self.customer)

    async def _to_queue(self, pending: _Pending, active: Party, skill: str) -> Ended | None:
        """A blind transfer to a skill queue: the hand-over's queue takes the caller."""
        if self.hooks.requeue is None:
            await self._mark(pending.id, state="failed", result="error", ended=True)
            return None
        await self._remove(self.bridge, self.customer)
        await self._agent_leaves(active, handed_to="queue")
        await self._mark(pending.id, state="ringing")
        # Who handed the caller to the queue is not offered them back (a transfer nobody answered
        # goes to the call's queue, where its own agent may help the caller after all).
        handed_by = frozenset({active.agent} if active.agent is not None else ())
        return await self._requeue(skill, pending.id, handed_by)

    async def _requeue(
        self, skill: str | None, xfer: str | None, passed_on: frozenset[str] = frozenset()
    ) -> Ended:
        async def took(agent: str) -> None:
            if self.hooks.on_agent is not None:  # the call is theirs before the transfer is done
                await self.hooks.on_agent(agent)
            if xfer is not None:
                await self._mark(xfer, state="completed", result="answered", to_agent=agent,
                                 answered=True, ended=True)  # fmt: skip

        assert self.hooks.requeue is not None
        await self._unhold_caller()  # the queue plays its own music
        result = await self.hooks.requeue(skill, took, passed_on)
        self.requeued = result
        if xfer is not None and not result.answered:
            failure = "caller_hangup" if result.outcome == "caller_hangup" else "no_agent"
            await self._mark(xfer, state="failed", result=failure, ended=True)
        return result.ended_by or ("customer" if result.outcome == "caller_hangup" else "system")

    async def _recover(self) -> Ended | None:
        """After a failed step: the transfer under way failed, the agent back with the caller."""
        pending = self.pending
        if pending is not None:
            with contextlib.suppress(AriError):
                await self._back_to_agent(pending, "error", state="failed")
            self.pending = None
            await self._mark(pending.id, state="failed", result="error", ended=True)
        return await self._check_legs()

    async def _caller_left(self) -> Ended:
        self.customer_gone = True
        pending = self.pending
        if pending is not None:
            await self._stop_ringback(pending)
            await self._end_target(pending, "caller_hangup")
            await self._drop_consult_bridge(pending)
            self.pending = None
            await self._mark(pending.id, state="failed", result="caller_hangup", ended=True)
        return "customer"

    # ---------------------------------------------------------------- the end

    async def close(self, state: str = "wrap_up", reason: str = "call_ended") -> None:
        """The call is over: every leg still up ends, every agent still on it is released (the
        one with the caller to ``state``), every recording is finished."""
        if self.pending is not None:  # the call ended some other way than the loop saw
            await self._end_target(self.pending, "error")
            await self._drop_consult_bridge(self.pending)
            await self._mark(self.pending.id, state="failed", result="error", ended=True)
            self.pending = None
        for party in self.parties:
            if party.done:
                continue
            if party.home is None:
                with contextlib.suppress(AriError):
                    await self.deps.ari.hangup(party.leg)
            await self._finish(party, state, reason)
        for bridge in self.bridges:
            with contextlib.suppress(AriError):
                await self.deps.ari.destroy_bridge(bridge)
        await asyncio.gather(*self._recording, return_exceptions=True)

    async def _finish(self, party: Party, state: str, reason: str, *, keep_recording: bool = True) -> None:
        """The party's leg is over: the agent is released now; their recording is finished beside
        the call (MixMonitor takes a moment to close its files), so the caller never waits for it."""
        if party.done:
            return
        party.done = True
        if party.agent is None:
            return
        agent, reserved_at = party.agent, party.reserved_at

        def write() -> None:
            with self.deps.db.session() as session:
                routing.release_agent(session, agent, state, reason, reserved_at=reserved_at)

        try:
            await asyncio.to_thread(write)
        except Exception:
            log.exception("agent %s could not be released after call %s", agent, self.call_ref)
        if party.capture is not None:
            self._recording.append(asyncio.create_task(self._keep_recording(party, agent, keep_recording)))

    async def _keep_recording(self, party: Party, agent: str, keep: bool) -> None:
        capture = party.capture
        assert capture is not None
        if not keep:
            await capture.discard(grace=0)
            return
        try:
            party.recording_id = await capture.finish(
                self.deps.db, self.deps.settings, self.hooks.facts(agent), ended_at=self.deps.now()
            )
        except Exception:
            log.exception("recording %s of call %s could not be finished", capture.rec_id, self.call_ref)

    # ---------------------------------------------------------------- small parts

    async def _reserve(
        self, name: str | None, skill: str | None, exclude: set[str]
    ) -> routing.AgentCandidate | None:
        now = self.deps.now()
        tz = self.deps.settings.timezone

        def pick() -> routing.AgentCandidate | None:
            with routing.RESERVE_LOCK, self.deps.db.session() as session:
                if name is None:
                    return routing.reserve_agent(session, skill, exclude=exclude, now=now, tz=tz)
                found = next(
                    (c for c in routing.candidates(session, now=now, tz=tz) if c.agent == name), None
                )
                if found is None or found.state != "available" or name in exclude:
                    return None
                routing.set_state(session, name, "on_call", CONSULT_REASON, since=now)
                return found

        return await asyncio.to_thread(pick)

    async def _mark(
        self,
        xfer: str,
        *,
        state: str,
        result: str | None = None,
        to_agent: str | None = None,
        rung_agent: str | None = None,
        answered: bool = False,
        ended: bool = False,
    ) -> None:
        now = self.deps.now()

        def write() -> None:
            with self.deps.db.session() as session:
                row = session.get(Transfer, xfer)
                if row is None:
                    return
                row.state = state
                row.result = result or row.result
                row.to_agent = to_agent or row.to_agent
                row.rung_agent = rung_agent or row.rung_agent
                if answered and row.answered_at is None:
                    row.answered_at = now
                if ended:
                    row.ended_at = now

        try:
            await asyncio.to_thread(write)
        except Exception:
            log.exception("transfer %s: writing %s failed", xfer, state)

    async def _drop_consult_bridge(self, pending: _Pending) -> None:
        if pending.bridge is not None:
            with contextlib.suppress(AriError):
                await self.deps.ari.destroy_bridge(pending.bridge)
            pending.bridge = None

    async def _hold_caller(self) -> None:
        await self._remove(self.bridge, self.customer)
        try:
            await self.deps.ari.start_moh(self.customer, "default")
            self._moh = True
        except AriError as exc:
            log.info("music on hold for %s: %s", self.customer, exc)

    async def _unhold_caller(self) -> None:
        if self._moh:
            self._moh = False
            with contextlib.suppress(AriError):
                await self.deps.ari.stop_moh(self.customer)

    async def _remove(self, bridge: str, leg: str) -> None:
        with contextlib.suppress(AriError):
            await self.deps.ari.remove_channel(bridge, leg)

    async def _play_ringback(self, leg: str) -> str | None:
        playback = f"ringback-{uuid.uuid4()}"
        try:
            await self.deps.ari.play(leg, RINGBACK, playback_id=playback)
        except AriError as exc:
            log.info("ringback for %s: %s", leg, exc)
            return None
        return playback

    async def _stop_ringback(self, pending: _Pending) -> None:
        if pending.ringback is not None:
            with contextlib.suppress(AriError):
                await self.deps.ari.stop_playback(pending.ringback)
            pending.ringback = None

    async def _alive(self, channel_id: str) -> bool:
        try:
            await self.deps.ari.get_channel(channel_id)
        except AriError as exc:
            return exc.status != 404
        return True


def _cause(event: JSON) -> int | None:
    cause = event.get("cause")
    return cause if isinstance(cause, int) else None


def _failure(cause: int | None) -> str:
    """A target that ended before answering: busy (17), declined (21), else no answer."""
    if cause == 17:
        return "busy"
    if cause == 21:
        return "refused"
    return "no_answer"


def facts_for(base: RecordingFacts) -> Callable[[str], RecordingFacts]:
    """The recording facts of the call for another agent on it."""
    return lambda agent: replace(base, agent=agent)
