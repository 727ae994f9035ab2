"""Erlang C: how many agents a half hour's calls need for a target service level. Pure functions.

Traffic A = calls x AHT / interval (erlangs). Erlang B by the recursion B(0) = 1,
B(n) = A·B(n-1) / (n + A·B(n-1)) -- no factorials or powers, so it stays in [0, 1] for any size.
Erlang C (the chance a call waits) from B: C = n·B / (n - A·(1 - B)), for n > A.
Service level = 1 - C·exp(-(n - A)·t / AHT) (answered within t seconds); ASA = C·AHT / (n - A);
occupancy = A / n. The agents needed are the fewest n > A whose service level reaches the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 1_000_000  # a bound on the search; no line the centre runs comes near it


@dataclass(frozen=True)
class Demand:
    """One interval's calls and what the line promises them."""

    calls: float
    interval_s: float
    aht_s: float
    answer_within_s: float
    level: float  # target share answered within answer_within_s, 0..1

    @property
    def erlangs(self) -> float:
        return self.calls * self.aht_s / self.interval_s


@dataclass(frozen=True)
class Staffing:
    agents: int
    service_level: float
    occupancy: float
    asa_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "agents": self.agents,
            "service_level": round(self.service_level, 4),
            "occupancy": round(self.occupancy, 4),
            "asa_s": round(self.asa_s, 2),
        }


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability with `agents` servers and `erlangs` offered, by the stable recursion."""
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """The chance a call waits; 1.0 when the agents cannot keep up (agents <= erlangs)."""
    if erlangs <= 0:
        return 0.0
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1 - b))


def staffing_for(agents: int, demand: Demand) -> Staffing:
    """Service level, occupancy and average speed of answer with `agents` on the line."""
    a = demand.erlangs
    if a <= 0:
        return Staffing(agents, 1.0, 0.0, 0.0)
    if agents <= a:
        return Staffing(agents, 0.0, 1.0, math.inf)
    c = erlang_c(agents, a)
    level = 1 - c * math.exp(-(agents - a) * demand.answer_within_s / demand.aht_s)
    return Staffing(agents, level, a / agents, c * demand.aht_s / (agents - a))


def required(demand: Demand) -> Staffing:
    """The fewest agents whose service level reaches `demand.level` (0 agents for no calls).

    Erlang B is carried from n to n + 1, so the search costs one step per agent tried."""
    a = demand.erlangs
    if a <= 0:
        return Staffing(0, 1.0, 0.0, 0.0)
    if not 0 < demand.level < 1:
        raise ValueError(f"the service level target {demand.level} is not between 0 and 1")
    first = math.floor(a) + 1
    b = erlang_b(first - 1, a)
    for n in range(first, MAX_AGENTS + 1):
        b = a * b / (n + a * b)
        c = n * b / (n - a * (1 - b))
        level = 1 - c * math.exp(-(n - a) * demand.answer_within_s / demand.aht_s)
        if level >= demand.level:
            return Staffing(n, level, a / n, c * demand.aht_s / (n - a))
    raise ValueError(f"more than {MAX_AGENTS} agents needed for {a:.0f} erlangs")


def by_occupancy(erlangs: float, max_occupancy: float) -> int:
    """Agents so that each is busy at most `max_occupancy` of the time (no speed target)."""
    if erlangs <= 0:
        return 0
    return math.ceil(erlangs / max_occupancy - 1e-9)
