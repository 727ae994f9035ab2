"""A discrete-event simulation of an agent campaign, driven by the production pacer classes.

Events on one heap, in simulated seconds from the start of the shift: agents log in, dials resolve
(ring out, busy, machine, or a live answer after AMD's verdict), a live answer takes the longest-
idle free agent at once (agents are kept on the line, so the bridge is immediate) or waits for
one until the grace runs out and is abandoned, talk ends, wrap-up ends (and the agent is free
again, goes on a break that is due, or leaves for a while), and every `tick_s` the pacer is asked
how many calls to start, exactly as the engine asks it: with a `PacingSnapshot` built from the
simulated state and the abandon ledger. Nothing reads a clock: time is the event's.

Figures: occupancy = (talk + wrap-up) / (talk + wrap-up + ready) over the time agents are logged
in and not on a break; agent wait = ready time per call an agent took; the abandon rate is over
live answers as the dialer sees them (AMD's HUMAN verdicts); the worst window is the highest
abandoned share any rolling window reached at any moment (with a window longer than the run,
the running share from the start).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from dialer.pacing import make_pacer
from dialer.pacing.estimators.ledger import AbandonLedger
from dialer.pacing.model import (
    BusyAgent,
    CallerAbandoned,
    DialResolved,
    DialResult,
    Observation,
    Pacer,
    PacingConfig,
    PacingSnapshot,
    Phase,
    Policy,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing.simulator.traffic import HOUR_S, Callee, Shift, Staffing, Traffic, callee, shift

JSON_KEYS = (
    "occupancy",
    "abandon_rate",
    "worst_window_abandon",
    "dials",
    "live_answers",
    "abandoned",
    "agent_wait_s",
)


class Event(IntEnum):
    login = 0
    resolve = 1
    abandon = 2
    talk_end = 3
    wrap_end = 4
    back = 5  # from a break or an absence
    tick = 6


class State(IntEnum):
    out = 0
    ready = 1
    talk = 2
    wrap = 3
    paused = 4


@dataclass(frozen=True)
class Simulation:
    policy: Policy
    traffic: Traffic = field(default_factory=Traffic)
    staffing: Staffing = field(default_factory=Staffing)
    seed: int = 1
    pacing: PacingConfig = field(default_factory=PacingConfig)
    tick_s: float = 1.0
    start_of_day_s: float = 9 * HOUR_S  # the shift starts at 09:00 (ADAPT_TAPERED's clock)


@dataclass(frozen=True)
class Result:
    occupancy: float
    abandon_rate: float
    worst_window_abandon: float
    dials: int
    live_answers: int
    abandoned: int
    agent_wait_s: float
    connected: int = 0  # live answers an agent took
    persons_lost_to_amd: int = 0  # people AMD called machines
    agent_hours: float = 0.0  # logged in, not on a break
    reasons: dict[str, int] = field(default_factory=dict)  # pacing decisions by reason code

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in JSON_KEYS}


@dataclass
class _Agent:
    index: int
    shift: Shift
    state: State = State.out
    since: float = 0.0
    next_break: int = 0
    away_taken: bool = False
    call: Callee | None = None


@dataclass
class _Totals:
    ready: float = 0.0
    talk: float = 0.0
    wrap: float = 0.0
    dials: int = 0
    live: int = 0
    abandoned: int = 0
    connected: int = 0
    lost_to_amd: int = 0


class _Run:
    def __init__(self, sim: Simulation, pacer: Pacer) -> None:
        self.sim = sim
        self.pacer = pacer
        self.end = sim.traffic.hours * HOUR_S
        self.events: list[tuple[float, int, Event, Any]] = []
        self.seq = 0
        self.agents = [
            _Agent(i, shift(sim.staffing, sim.traffic, sim.seed, i)) for i in range(sim.staffing.agents)
        ]
        self.free: deque[_Agent] = deque()
        self.ringing: dict[int, tuple[float, Callee]] = {}  # dial -> (started, callee)
        self.waiting: OrderedDict[int, Callee] = OrderedDict()
        self.seen: list[Observation] = []
        self.ledger = AbandonLedger(sim.pacing.windows_s)
        self.totals = _Totals()
        self.next_dial = 0
        self.reasons: dict[str, int] = {}

    def at(self, t: float, kind: Event, data: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, data))

    def run(self) -> Result:
        for agent in self.agents:
            self.at(agent.shift.login_s, Event.login, agent)
        self.at(0.0, Event.tick)
        handlers: dict[Event, Callable[[float, Any], None]] = {
            Event.login: self._back,
            Event.back: self._back,
            Event.resolve: self._resolve,
            Event.abandon: self._abandon,
            Event.talk_end: self._talk_end,
            Event.wrap_end: self._wrap_end,
            Event.tick: self._tick,
        }
        while self.events:
            now, _, kind, data = heapq.heappop(self.events)
            if now > self.end:
                break
            handlers[kind](now, data)
        for agent in self.agents:
            self._enter(agent, State.out, self.end)
        return self._result()

    # ------------------------------------------------------------ agents

    def _enter(self, agent: _Agent, state: State, now: float) -> None:
        spent = max(0.0, min(now, self.end) - min(agent.since, self.end))
        if agent.state is State.ready:
            self.totals.ready += spent
        elif agent.state is State.talk:
            self.totals.talk += spent
        elif agent.state is State.wrap:
            self.totals.wrap += spent
        agent.state, agent.since = state, now

    def _back(self, now: float, agent: _Agent) -> None:
        if self.waiting:
            key, caller = self.waiting.popitem(last=False)
            self._connect(agent, caller, now, key)
        else:
            self._enter(agent, State.ready, now)
            self.free.append(agent)

    def _connect(self, agent: _Agent, caller: Callee, now: float, key: int) -> None:
        self._enter(agent, State.talk, now)
        agent.call = caller
        self.totals.connected += 1
        self.ledger.record(False, now)
        self.at(now + caller.talk_s, Event.talk_end, agent)

    def _talk_end(self, now: float, agent: _Agent) -> None:
        assert agent.call is not None
        self.seen.append(TalkEnded(now - agent.since))
        self._enter(agent, State.wrap, now)
        self.at(now + agent.call.wrap_s, Event.wrap_end, agent)

    def _wrap_end(self, now: float, agent: _Agent) -> None:
        wrapped = now - agent.since
        agent.call = None
        plan = agent.shift
        if plan.away is not None and not agent.away_taken and now >= plan.away[0]:
            agent.away_taken = True
            self.seen.append(WrapEnded(wrapped, ready_again=False))
            self._enter(agent, State.out, now)
            self.at(max(plan.away[1], now), Event.back, agent)
            return
        if agent.next_break < len(plan.breaks) and now >= plan.breaks[agent.next_break][0]:
            length = plan.breaks[agent.next_break][1]
            agent.next_break += 1
            self.seen.append(WrapEnded(wrapped, ready_again=False))
            self._enter(agent, State.paused, now)
            self.at(now + length, Event.back, agent)
            return
        self.seen.append(WrapEnded(wrapped, ready_again=True))
        self._back(now, agent)

    # ------------------------------------------------------------ calls

    def _resolve(self, now: float, data: tuple[int, Callee]) -> None:
        key, caller = data
        started, _ = self.ringing.pop(key)
        self.seen.append(DialResolved(now - started, caller.result, caller.answered_after_s))
        if caller.person and caller.result is not DialResult.live:
            self.totals.lost_to_amd += 1
        if caller.result is not DialResult.live:
            return
        self.totals.live += 1
        if self.free:
            self._connect(self.free.popleft(), caller, now, key)
        else:
            self.waiting[key] = caller
            self.at(now + self.sim.pacing.grace_s, Event.abandon, key)

    def _abandon(self, now: float, key: int) -> None:
        if self.waiting.pop(key, None) is None:
            return  # an agent took it in time
        self.totals.abandoned += 1
        self.ledger.record(True, now)
        self.seen.append(CallerAbandoned())

    def _tick(self, now: float, _data: Any = None) -> None:
        decision = self.pacer.decide(self._snapshot(now))
        self.reasons[decision.reason_code] = self.reasons.get(decision.reason_code, 0) + 1
        for _ in range(decision.calls_to_start):
            key = self.next_dial
            self.next_dial += 1
            caller = callee(self.sim.traffic, self.sim.seed, key, now)
            self.ringing[key] = (now, caller)
            self.totals.dials += 1
            self.at(now + caller.resolve_after_s, Event.resolve, (key, caller))
        if now + self.sim.tick_s <= self.end:
            self.at(now + self.sim.tick_s, Event.tick)

    def _snapshot(self, now: float) -> PacingSnapshot:
        busy = []
        paused = 0
        for agent in self.agents:
            if agent.state is State.talk:
                busy.append(BusyAgent(Phase.talk, now - agent.since))
            elif agent.state is State.wrap:
                busy.append(BusyAgent(Phase.wrap, now - agent.since))
            elif agent.state is State.paused:
                paused += 1
        seen, self.seen = tuple(self.seen), []
        return PacingSnapshot(
            now=now,
            agents_free=len(self.free),
            agents_busy=tuple(busy),
            agents_paused=paused,
            calls_ringing=tuple(now - started for started, _ in self.ringing.values()),
            calls_answered=tuple(_since_answer(now, started, c) for started, c in self.ringing.values()),
            calls_waiting=len(self.waiting),
            observations=seen,
            abandon=self.ledger.windows(now, self.sim.pacing.guard_horizon_s),
            time_of_day_s=self.sim.start_of_day_s + now,
        )

    def _result(self) -> Result:
        t = self.totals
        worked = t.talk + t.wrap
        logged = worked + t.ready
        return Result(
            occupancy=round(worked / logged, 4) if logged else 0.0,
            abandon_rate=round(t.abandoned / t.live, 4) if t.live else 0.0,
            worst_window_abandon=round(max(self.ledger.worst_share.values(), default=0.0), 4),
            dials=t.dials,
            live_answers=t.live,
            abandoned=t.abandoned,
            agent_wait_s=round(t.ready / max(1, t.connected), 1),
            connected=t.connected,
            persons_lost_to_amd=t.lost_to_amd,
            agent_hours=round(logged / HOUR_S, 2),
            reasons=dict(self.reasons),
        )


def _since_answer(now: float, started: float, caller: Callee) -> float | None:
    """Seconds since the callee answered (AMD analysing), None while the call still rings."""
    if caller.answered_after_s is None or now < started + caller.answered_after_s:
        return None
    return now - started - caller.answered_after_s


def simulate(sim: Simulation, pacer: Pacer | None = None) -> Result:
    """Run one simulated shift; `pacer` defaults to a fresh production pacer of `sim.policy`."""
    return _Run(sim, pacer or make_pacer(sim.policy, sim.pacing)).run()
