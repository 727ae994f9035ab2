"""The simulated world: callees (what each dial meets) and agents (when they work).

Common random numbers: the k-th dial of a run draws everything about its callee -- outcome, ring
time, AMD delay and error, talk and wrap-up times -- from its own generator seeded by (seed, k),
and each agent's shift and breaks from one seeded by (seed, agent). Two policies run with the
same seed therefore meet the same callees in the same order and the same agents; only the
timing of the dials differs (with a drifting answer rate, the k-th callee's uniform draw meets
the rate of the moment it is dialled). Sources and the reasons for each default: docs/pacing.md.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dialer.pacing.estimators.durations import lognormal_params
from dialer.pacing.model import DialResult

HOUR_S = 3600.0
AGENT_STREAM = 1 << 39  # agents' generators are seeded apart from the dials'
DAY_STREAM = 1 << 24  # and each day's apart from the others' (day 0: as a one-day run)


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    mu, sigma = lognormal_params(mean, cv)
    return math.exp(rng.gauss(mu, sigma))


def _lognormal_median(rng: random.Random, median: float, cv: float) -> float:
    sigma = math.sqrt(math.log1p(cv * cv))
    return math.exp(math.log(median) + sigma * rng.gauss(0.0, 1.0))


@dataclass(frozen=True)
class Traffic:
    answer_rate: float = 0.30  # P(a person answers): before AMD errors
    answer_rate_end: float | None = None  # drifts to this between 1/3 and 2/3 of each day's shift
    hours: float = 8.0
    # How dials that no person answers end, in these proportions.
    machine_share: float = 0.35
    busy_share: float = 0.10
    failed_share: float = 0.05  # congestion, unreachable; the rest ring out (no answer)
    ring_timeout_s: float = 30.0  # dialer_ring_timeout; the rules ask for at least 15 s
    live_ring_median_s: float = 8.0
    live_ring_cv: float = 0.6
    machine_ring_median_s: float = 18.0
    machine_ring_cv: float = 0.3
    busy_after_s: float = 3.0
    failed_after_s: float = 1.0
    # AMD (Asterisk's defaults: greeting <= 1.5 s, 0.8 s silence after it, 5 s at most).
    amd_human_median_s: float = 1.8
    amd_machine_median_s: float = 3.2
    amd_cv: float = 0.3
    amd_false_machine: float = 0.03  # a person taken for a machine (lost to the agents)
    amd_false_human: float = 0.10  # a machine taken for a person (an agent hears it)
    talk_mean_s: float = 180.0
    talk_cv: float = 1.0
    machine_talk_mean_s: float = 12.0  # an agent who hears a machine hangs up
    wrap_mean_s: float = 30.0
    wrap_cv: float = 0.3

    def __post_init__(self) -> None:
        for name in ("answer_rate", "machine_share", "busy_share", "failed_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.answer_rate_end is not None and not 0 <= self.answer_rate_end <= 1:
            raise ValueError(f"answer_rate_end must be between 0 and 1, got {self.answer_rate_end}")
        if self.machine_share + self.busy_share + self.failed_share > 1:
            raise ValueError("machine, busy and failed shares add up to more than 1")
        if self.hours <= 0 or self.talk_mean_s <= 0 or self.wrap_mean_s < 0:
            raise ValueError("hours and talk time must be positive, wrap-up not negative")

    def answer_rate_at(self, t: float) -> float:
        if self.answer_rate_end is None:
            return self.answer_rate
        span = self.hours * HOUR_S
        x = min(1.0, max(0.0, (t - span / 3) / (span / 3)))
        return self.answer_rate + x * (self.answer_rate_end - self.answer_rate)


@dataclass(frozen=True)
class Callee:
    """What one dial meets, as the dialer will see it."""

    result: DialResult
    resolve_after_s: float  # from the dial to the result (AMD's verdict, or the end)
    person: bool  # a real person answered (whatever AMD said)
    talk_s: float  # if an agent takes it
    wrap_s: float
    answered_after_s: float | None = None  # when it was answered (AMD starts), if it was


def callee(traffic: Traffic, seed: int, dial_index: int, at: float) -> Callee:
    rng = random.Random((seed << 40) + dial_index)
    u_kind, u_other, u_amd = rng.random(), rng.random(), rng.random()
    ring_live = _lognormal_median(rng, traffic.live_ring_median_s, traffic.live_ring_cv)
    ring_machine = _lognormal_median(rng, traffic.machine_ring_median_s, traffic.machine_ring_cv)
    amd_human = _lognormal_median(rng, traffic.amd_human_median_s, traffic.amd_cv)
    amd_machine = _lognormal_median(rng, traffic.amd_machine_median_s, traffic.amd_cv)
    talk = _lognormal(rng, traffic.talk_mean_s, traffic.talk_cv)
    machine_talk = _lognormal(rng, traffic.machine_talk_mean_s, 0.5)
    wrap = _lognormal(rng, traffic.wrap_mean_s, traffic.wrap_cv) if traffic.wrap_mean_s > 0 else 0.0
    timeout = traffic.ring_timeout_s

    if u_kind < traffic.answer_rate_at(at):
        if ring_live > timeout:
            return Callee(DialResult.no_answer, timeout, False, 0.0, 0.0)
        if u_amd < traffic.amd_false_machine:
            return Callee(DialResult.machine, ring_live + amd_human, True, 0.0, 0.0, ring_live)
        return Callee(DialResult.live, ring_live + amd_human, True, talk, wrap, ring_live)
    if u_other < traffic.machine_share:
        if ring_machine > timeout:
            return Callee(DialResult.no_answer, timeout, False, 0.0, 0.0)
        if u_amd < traffic.amd_false_human:
            return Callee(
                DialResult.live, ring_machine + amd_machine, False, machine_talk, wrap, ring_machine
            )
        return Callee(DialResult.machine, ring_machine + amd_machine, False, 0.0, 0.0, ring_machine)
    rest = u_other - traffic.machine_share
    if rest < traffic.busy_share:
        return Callee(DialResult.busy, traffic.busy_after_s, False, 0.0, 0.0)
    if rest < traffic.busy_share + traffic.failed_share:
        return Callee(DialResult.failed, traffic.failed_after_s, False, 0.0, 0.0)
    return Callee(DialResult.no_answer, timeout, False, 0.0, 0.0)


@dataclass(frozen=True)
class Shift:
    """One agent's day: log in, breaks (taken at the first end of wrap-up after they are due), a
    part-timer's absence, log out at the end of the run."""

    login_s: float
    breaks: tuple[tuple[float, float], ...]  # (due at, length)
    away: tuple[float, float] | None = None  # (leaves at the first wrap-up end after, back at)


@dataclass(frozen=True)
class Staffing:
    agents: int = 20
    login_spread_s: float = 120.0  # agents log in over the first two minutes
    break_every_s: float = 2 * HOUR_S
    break_mean_s: float = 600.0
    part_time_every: int = 5  # every 5th agent leaves at mid-shift for 30 minutes
    part_time_away_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.agents < 0:
            raise ValueError(f"agents cannot be negative, got {self.agents}")


def shift(staffing: Staffing, traffic: Traffic, seed: int, agent: int, day: int = 0) -> Shift:
    """Agent `agent`'s shift on day `day` of a run (times from that day's start)."""
    rng = random.Random((seed << 40) + AGENT_STREAM + day * DAY_STREAM + agent)
    login = rng.uniform(0.0, staffing.login_spread_s)
    end = traffic.hours * HOUR_S
    breaks = []
    due = login + staffing.break_every_s * rng.uniform(0.75, 1.25)
    while due < end:
        breaks.append((due, _lognormal(rng, staffing.break_mean_s, 0.3)))
        due += staffing.break_every_s * rng.uniform(0.75, 1.25)
    away = None
    if staffing.part_time_every and agent % staffing.part_time_every == staffing.part_time_every - 1:
        leave = end / 2 + rng.uniform(-300.0, 300.0)
        away = (leave, leave + staffing.part_time_away_s)
    return Shift(login, tuple(breaks), away)
