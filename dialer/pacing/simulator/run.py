"""A discrete-event simulation of an agent campaign, driven by the production pacer classes.

Events on one heap, in simulated seconds from the start of the shift: agents log in, dials resolve
(ring out, busy, machine, or a live answer after AMD's verdict), a live answer takes the longest-
idle free agent at once (agents are kept on the line, so the bridge is immediate) or waits for
one until the grace runs out and is abandoned, talk ends, wrap-up ends (and the agent is free
again, goes on a break that is due, or leaves for a while), and every `tick_s` the pacer is asked
how many calls to start, exactly as the engine asks it: with a `PacingSnapshot` built from the
simulated state and the abandon ledger. Nothing reads a clock: time is the event's.

Several days (`Simulation.days`): day d's shift starts at d x 24 h (09:00 again), its agents log in
and out with shifts of their own, and the same pacer and the same abandon ledger go on from one day
to the next, as in the engine (the worker keeps a campaign's pacer while it runs; the window is read
from the attempts ledger), so day 2 starts with day 1's live answers and abandons in its 24 h window.
At the end of each shift of a multi-day run the dialer stops and the agents who are ready stay at
their posts until the calls in flight have resolved (the hard cap counts on them); agents talking or
wrapping up finish and log out. Their answers count for that day; time past the shift's end is not
counted in occupancy. A one-day run stops at the end of the shift as it always has (calls still in
flight are left unresolved), so its figures are unchanged.

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
from dataclasses import astuple, dataclass, field, replace
from enum import IntEnum
from typing import Any

from dialer.pacing import make_pacer
from dialer.pacing.estimators.ledger import AbandonLedger
from dialer.pacing.model import (
    DAY_S,
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


DAY_KEYS = (
    "occupancy",
    "first_hour_occupancy",
    "abandon_rate",
    "worst_window_abandon",
    "window_at_start",
    "dials",
    "live_answers",
    "abandoned",
    "agent_wait_s",
    "cap_passes",
)


class Event(IntEnum):
    login = 0
    resolve = 1
    abandon = 2
    talk_end = 3
    wrap_end = 4
    back = 5  # from a break or an absence
    tick = 6
    day = 7  # a new day's shift starts
    hour = 8  # one hour into a shift (first-hour figures)
    closing = 9  # a multi-day run's shift ends: the dialer stops


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
    days: int = 1  # consecutive days, each a shift of `traffic.hours` from 09:00
    relearn_each_day: bool = False  # a new pacer every morning (an engine restarted overnight)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if self.days > 1 and self.traffic.hours > MAX_SHIFT_H:
            raise ValueError(f"a shift of a multi-day run lasts at most {MAX_SHIFT_H:g} h")


MAX_SHIFT_H = 20.0  # several days: each shift, and its end, must be over before the next one


@dataclass(frozen=True)
class Day:
    """One day of a multi-day run. `window_at_start`: the abandoned share of the campaign's first
    (24 h) window as the day's shift starts, with its counts; `cap_passes`: the share of the
    pacer's passes that day that said `abandon_cap`."""

    occupancy: float
    first_hour_occupancy: float
    abandon_rate: float
    worst_window_abandon: float
    window_at_start: dict[str, float]
    dials: int
    live_answers: int
    abandoned: int
    agent_wait_s: float
    cap_passes: float

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in DAY_KEYS}


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
    days: tuple[Day, ...] = ()  # a multi-day run's days (empty for one day)

    def as_json(self) -> dict[str, Any]:
        figures = {key: getattr(self, key) for key in JSON_KEYS}
        if self.days:
            figures["days"] = [day.as_json() for day in self.days]
        return figures


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

    def minus(self, other: _Totals) -> _Totals:
        return _Totals(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


class _Run:
    def __init__(self, sim: Simulation, pacer: Pacer, new_pacer: Callable[[], Pacer] | None = None) -> None:
        self.sim = sim
        self.pacer = pacer
        self.new_pacer = new_pacer or (lambda: make_pacer(sim.policy, sim.pacing))
        self.day = 0
        self.day_start = 0.0
        self.end = sim.traffic.hours * HOUR_S  # the current day's end of shift
        self.events: list[tuple[float, int, Event, Any]] = []
        self.seq = 0
        self.agents = [
            _Agent(i, shift(sim.staffing, sim.traffic, sim.seed, i)) for i in range(sim.staffing.agents)
        ]
        self.days: list[Day] = []
        self.day_totals = _Totals()  # the totals as the current day started
        self.hour_totals: _Totals | None = None  # and one hour into it
        self.day_reasons: dict[str, int] = {}
        self.window_at_start: dict[str, float] = {}
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

    @property
    def several_days(self) -> bool:
        return self.sim.days > 1

    def run(self) -> Result:
        self._start_day(0.0, 0)
        handlers: dict[Event, Callable[[float, Any], None]] = {
            Event.login: self._back,
            Event.back: self._back,
            Event.resolve: self._resolve,
            Event.abandon: self._abandon,
            Event.talk_end: self._talk_end,
            Event.wrap_end: self._wrap_end,
            Event.tick: self._tick,
            Event.day: self._start_day,
            Event.hour: self._hour,
            Event.closing: lambda now, _data: self._after_shift(now),
        }
        while self.events:
            now, _, kind, data = heapq.heappop(self.events)
            if now > self.end and not self.several_days:
                break
            handlers[kind](now, data)
        for agent in self.agents:
            self._enter(agent, State.out, self.end)
        if self.several_days:
            self._close_day()
        return self._result()

    # ------------------------------------------------------------ days

    def _start_day(self, now: float, day: int) -> None:
        """Day `day`'s shift starts at `now`: its agents' shifts, the first tick, the figures so far."""
        if day > 0:
            for agent in self.agents:  # all out by now; a call still going is cut at the old end
                self._enter(agent, State.out, now)
            self._close_day()
            if self.sim.relearn_each_day:
                self.pacer = self.new_pacer()
        sim = self.sim
        self.day, self.day_start = day, now
        self.end = now + sim.traffic.hours * HOUR_S
        self.day_totals = replace(self.totals)
        self.hour_totals = None
        self.day_reasons = {}
        first = self.ledger.window(sim.pacing.windows_s[0], now)
        self.window_at_start = {
            "share": round(first.share, 4),
            "live_answers": first.live_answers,
            "abandoned": first.abandoned,
        }
        for w in self.ledger.worst_share:
            self.ledger.worst_share[w] = 0.0  # each day's worst is its own; the run's is the max
        for agent in self.agents:
            if day > 0:
                agent.shift = shift(sim.staffing, sim.traffic, sim.seed, agent.index, day)
                agent.next_break, agent.away_taken = 0, False
            self.at(now + agent.shift.login_s, Event.login, (agent, day))
        self.at(now, Event.tick)
        if self.several_days:
            self.at(now + HOUR_S, Event.hour)
            if day + 1 < sim.days:
                self.at(now + DAY_S, Event.day, day + 1)

    def _hour(self, now: float, _data: Any = None) -> None:
        self.hour_totals = self._accrued(now)

    def _accrued(self, now: float) -> _Totals:
        """The totals with every agent's current state counted up to `now`."""
        t = replace(self.totals)
        for agent in self.agents:
            spent = max(0.0, min(now, self.end) - min(agent.since, self.end))
            if agent.state is State.ready:
                t.ready += spent
            elif agent.state is State.talk:
                t.talk += spent
            elif agent.state is State.wrap:
                t.wrap += spent
        return t

    def _close_day(self) -> None:
        t = self.totals.minus(self.day_totals)
        hour = (self.hour_totals or self.totals).minus(self.day_totals)
        passes = sum(self.day_reasons.values())
        self.days.append(
            Day(
                occupancy=_occupancy(t),
                first_hour_occupancy=_occupancy(hour),
                abandon_rate=round(t.abandoned / t.live, 4) if t.live else 0.0,
                worst_window_abandon=round(max(self.ledger.worst_share.values(), default=0.0), 4),
                window_at_start=self.window_at_start,
                dials=t.dials,
                live_answers=t.live,
                abandoned=t.abandoned,
                agent_wait_s=round(t.ready / max(1, t.connected), 1),
                cap_passes=round(self.day_reasons.get("abandon_cap", 0) / passes, 4) if passes else 0.0,
            )
        )

    def _on_shift(self, now: float) -> bool:
        return now <= self.end

    def _after_shift(self, now: float) -> None:
        """Past the end of a multi-day run's shift: once no call is in flight, the agents still
        ready log out (they stayed so that every answer the cap counted on found one)."""
        if self.ringing or self.waiting:
            return
        while self.free:
            self._enter(self.free.popleft(), State.out, now)

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

    def _back(self, now: float, data: _Agent | tuple[_Agent, int]) -> None:
        agent, day = data if isinstance(data, tuple) else (data, self.day)
        if day != self.day or not self._on_shift(now) or agent.state in (State.talk, State.wrap):
            return  # the shift is over (or the agent is still on yesterday's call)
        self._ready(now, agent)

    def _ready(self, now: float, agent: _Agent) -> None:
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
        if not self._on_shift(now):  # a multi-day run's shift is over: the agent logs out
            self.seen.append(WrapEnded(wrapped, ready_again=False))
            self._enter(agent, State.out, now)
            return
        shift_time = now - self.day_start  # a shift's times are from its day's start
        if plan.away is not None and not agent.away_taken and shift_time >= plan.away[0]:
            agent.away_taken = True
            self.seen.append(WrapEnded(wrapped, ready_again=False))
            self._enter(agent, State.out, now)
            self.at(max(self.day_start + plan.away[1], now), Event.back, (agent, self.day))
            return
        if agent.next_break < len(plan.breaks) and shift_time >= plan.breaks[agent.next_break][0]:
            length = plan.breaks[agent.next_break][1]
            agent.next_break += 1
            self.seen.append(WrapEnded(wrapped, ready_again=False))
            self._enter(agent, State.paused, now)
            self.at(now + length, Event.back, (agent, self.day))
            return
        self.seen.append(WrapEnded(wrapped, ready_again=True))
        self._ready(now, agent)

    # ------------------------------------------------------------ calls

    def _resolve(self, now: float, data: tuple[int, Callee]) -> None:
        key, caller = data
        started, _ = self.ringing.pop(key)
        self.seen.append(DialResolved(now - started, caller.result, caller.answered_after_s))
        if caller.person and caller.result is not DialResult.live:
            self.totals.lost_to_amd += 1
        if caller.result is DialResult.live:
            self.totals.live += 1
            if self.free:
                self._connect(self.free.popleft(), caller, now, key)
            else:
                self.waiting[key] = caller
                self.at(now + self.sim.pacing.grace_s, Event.abandon, key)
        if not self._on_shift(now):
            self._after_shift(now)

    def _abandon(self, now: float, key: int) -> None:
        if self.waiting.pop(key, None) is None:
            return  # an agent took it in time
        self.totals.abandoned += 1
        self.ledger.record(True, now)
        self.seen.append(CallerAbandoned())
        if not self._on_shift(now):
            self._after_shift(now)

    def _tick(self, now: float, _data: Any = None) -> None:
        decision = self.pacer.decide(self._snapshot(now))
        self.reasons[decision.reason_code] = self.reasons.get(decision.reason_code, 0) + 1
        self.day_reasons[decision.reason_code] = self.day_reasons.get(decision.reason_code, 0) + 1
        for _ in range(decision.calls_to_start):
            key = self.next_dial
            self.next_dial += 1
            caller = callee(self.sim.traffic, self.sim.seed, key, now - self.day_start)
            self.ringing[key] = (now, caller)
            self.totals.dials += 1
            self.at(now + caller.resolve_after_s, Event.resolve, (key, caller))
        if now + self.sim.tick_s <= self.end:
            self.at(now + self.sim.tick_s, Event.tick)
        elif self.several_days:
            self.at(self.end, Event.closing)

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
            abandon=self.ledger.windows(now, self.sim.pacing.horizon_s),
            time_of_day_s=(self.sim.start_of_day_s + now - self.day_start) % DAY_S,
        )

    def _result(self) -> Result:
        t = self.totals
        worked = t.talk + t.wrap
        logged = worked + t.ready
        return Result(
            occupancy=_occupancy(t),
            abandon_rate=round(t.abandoned / t.live, 4) if t.live else 0.0,
            worst_window_abandon=max(
                [round(max(self.ledger.worst_share.values(), default=0.0), 4)]
                + [day.worst_window_abandon for day in self.days]  # each day's worst was its own
            ),
            dials=t.dials,
            live_answers=t.live,
            abandoned=t.abandoned,
            agent_wait_s=round(t.ready / max(1, t.connected), 1),
            connected=t.connected,
            persons_lost_to_amd=t.lost_to_amd,
            agent_hours=round(logged / HOUR_S, 2),
            reasons=dict(self.reasons),
            days=tuple(self.days),
        )


def _occupancy(t: _Totals) -> float:
    worked = t.talk + t.wrap
    logged = worked + t.ready
    return round(worked / logged, 4) if logged else 0.0


def _since_answer(now: float, started: float, caller: Callee) -> float | None:
    """Seconds since the callee answered (AMD analysing), None while the call still rings."""
    if caller.answered_after_s is None or now < started + caller.answered_after_s:
        return None
    return now - started - caller.answered_after_s


def simulate(
    sim: Simulation, pacer: Pacer | None = None, new_pacer: Callable[[], Pacer] | None = None
) -> Result:
    """Run the simulated shift(s); `pacer` defaults to a fresh production pacer of `sim.policy`,
    `new_pacer` makes the next morning's when `sim.relearn_each_day` (the same default)."""
    return _Run(sim, pacer or make_pacer(sim.policy, sim.pacing), new_pacer).run()
