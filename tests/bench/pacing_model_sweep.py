"""Which traffic-model assumption decides the occupancy a fixed ratio and progressive reach
(issue 12's anchor: "progressive 79.7%, a tuned fixed ratio 90.2% at 2.95%" in its simulation;
docs/pacing.md, "The traffic model against the issue's anchor"):

    PYTHONPATH=$PWD .venv/bin/python -m tests.bench.pacing_model_sweep [variant,...] [hours]
    PYTHONPATH=$PWD .venv/bin/python -m tests.bench.pacing_model_sweep variant,... hours predictive [days]

The second form runs the predictive pacer, capped as in production, on the variants instead (one
JSON line per seed, `days` consecutive days).

Each variant changes assumptions of `simulator.traffic` one at a time (or a few together, named
so) and runs, 20 agents, 30% live, 180 s talk, 30 s wrap-up, seeds 1, 2, 3, common random numbers,
no abandon cap (limit 0.5):
- progressive;
- a fixed dial level as VICIdial's RATIO mode counts it (round(level x (free + talking agents))
  calls in flight and talking; `AdaptPacer` with its level frozen, as tests/bench/test_pacing_frontier.py);
- a fixed number of lines per *free* agent (calls ringing = round(r x free agents)), the other
  common reading of "dial ratio".
For each family it prints the occupancy interpolated at 3% abandoned (between the two settings
around it). Two simulations at a time.
"""

from __future__ import annotations

import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from dialer.pacing import AdaptPacer, AdaptSettings, PacingConfig, PacingDecision, PacingSnapshot, Policy
from dialer.pacing.progressive import ProgressivePacer, no_agents
from dialer.pacing.simulator import Result, Simulation, Staffing, Traffic, simulate

SEEDS = (1, 2, 3)
UNCAPPED = PacingConfig(abandon_limit=0.5)
LEVELS = (1.05, 1.1, 1.15, 1.2, 1.3)
PER_FREE = (2.0, 2.5, 3.0, 4.0, 5.0)
TARGET = 0.03

NO_AMD_ERRORS = {"amd_false_machine": 0.0, "amd_false_human": 0.0}
AMD_INSTANT = {"amd_human_median_s": 0.01, "amd_machine_median_s": 0.01}
NO_BREAKS = {"break_every_s": 1e9, "part_time_every": 0}
NO_RAMP = {"login_spread_s": 0.0}
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # traffic changes, staffing changes
    "base": ({}, {}),
    "no_amd_errors": (NO_AMD_ERRORS, {}),
    "amd_instant": (AMD_INSTANT, {}),
    "no_breaks": ({}, NO_BREAKS),
    "no_ramp": ({}, NO_RAMP),
    "talk_cv_0.5": ({"talk_cv": 0.5}, {}),
    "ring_timeout_20": ({"ring_timeout_s": 20.0}, {}),
    "ring_timeout_15": ({"ring_timeout_s": 15.0}, {}),
    "answer_median_5": ({"live_ring_median_s": 5.0}, {}),
    "no_machines": ({"machine_share": 0.0}, {}),
    "simple": ({**NO_AMD_ERRORS, **AMD_INSTANT}, {**NO_BREAKS, **NO_RAMP}),
    "simple_timeout_20": ({**NO_AMD_ERRORS, **AMD_INSTANT, "ring_timeout_s": 20.0}, {**NO_BREAKS, **NO_RAMP}),
}


class PerFreeAgent(ProgressivePacer):
    """round(r x free agents) calls ringing or waiting, whatever the busy agents are doing."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def decide(self, s: PacingSnapshot) -> PacingDecision:
        nobody = no_agents(s)
        if nobody is not None:
            return nobody
        goal = round(self.ratio * max(0, s.agents_free - s.calls_waiting))
        n = max(0, goal - len(s.calls_ringing))
        return PacingDecision(n, "progressive", {"free": s.agents_free})


@dataclass(frozen=True)
class Job:
    variant: str
    family: str  # progressive, level, per_free
    setting: float
    seed: int
    hours: float


def one(job: Job) -> Result:
    traffic_change, staffing_change = VARIANTS[job.variant]
    traffic = replace(Traffic(hours=job.hours), **traffic_change)
    staffing = replace(Staffing(agents=20), **staffing_change)
    sim = Simulation(Policy.progressive, traffic, staffing, seed=job.seed, pacing=UNCAPPED)
    if job.family == "progressive":
        return simulate(sim, ProgressivePacer())
    if job.family == "level":
        frozen = AdaptSettings(initial_level=job.setting, level_every_s=1e12, dial_loop_s=1.0)
        return simulate(sim, AdaptPacer(UNCAPPED, frozen))
    return simulate(sim, PerFreeAgent(job.setting))


def at_target(points: list[tuple[float, float, float]]) -> str:
    """Occupancy interpolated at TARGET abandoned from (setting, abandon, occupancy) points."""
    points = sorted(points, key=lambda p: p[1])
    for (s0, a0, o0), (s1, a1, o1) in pairwise(points):
        if a0 <= TARGET <= a1 and a1 > a0:
            x = (TARGET - a0) / (a1 - a0)
            return f"{o0 + x * (o1 - o0):.1%} (setting ~{s0 + x * (s1 - s0):.3g})"
    return "out of range"


def predictive(job: tuple[str, int, float, int]) -> Result:
    name, seed, hours, days = job
    traffic_change, staffing_change = VARIANTS[name]
    traffic = replace(Traffic(hours=hours), **traffic_change)
    staffing = replace(Staffing(agents=20), **staffing_change)
    return simulate(Simulation(Policy.predictive, traffic, staffing, seed=seed, days=days))


def main_predictive(names: list[str], hours: float, days: int) -> None:
    jobs = [(name, seed, hours, days) for name in names for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(predictive, jobs))
    for (name, seed, _, _), r in zip(jobs, results, strict=True):
        print(f"{name} predictive seed {seed} --days {days}: {json.dumps(r.as_json())}")
    for name in names:
        runs = [r for (n, _, _, _), r in zip(jobs, results, strict=True) if n == name]
        later = [d.occupancy for r in runs for d in r.days[1:]]
        print(
            f"{name}: occupancy {statistics.mean(r.occupancy for r in runs):.4f}"
            f" ({', '.join(f'{r.occupancy:.4f}' for r in runs)}), abandon"
            f" {statistics.mean(r.abandon_rate for r in runs):.4f}, worst window"
            f" {max(r.worst_window_abandon for r in runs):.4f}"
            + (f", days 2-{days} {statistics.mean(later):.4f}" if later else "")
        )


def main(argv: list[str]) -> None:
    names = argv[0].split(",") if argv and argv[0] else list(VARIANTS)
    hours = float(argv[1]) if len(argv) > 1 else 8.0
    if len(argv) > 2 and argv[2] == "predictive":
        main_predictive(names, hours, int(argv[3]) if len(argv) > 3 else 1)
        return
    jobs = []
    for name in names:
        for seed in SEEDS:
            jobs.append(Job(name, "progressive", 0.0, seed, hours))
            jobs += [Job(name, "level", level, seed, hours) for level in LEVELS]
            jobs += [Job(name, "per_free", r, seed, hours) for r in PER_FREE]
    with ProcessPoolExecutor(2) as pool:
        results = dict(zip(jobs, pool.map(one, jobs, chunksize=4), strict=True))
    print(f"20 agents, 30% live, 180 s talk, 30 s wrap-up, {hours:g} h, seeds {SEEDS}, no cap; means")
    for name in names:
        mine = {j: r for j, r in results.items() if j.variant == name}
        prog = [r for j, r in mine.items() if j.family == "progressive"]
        print(
            f"{name}: progressive {statistics.mean(r.occupancy for r in prog):.1%}"
            f" (wait {statistics.mean(r.agent_wait_s for r in prog):.1f} s,"
            f" dials/live {statistics.mean(r.dials / r.live_answers for r in prog):.2f})"
        )
        for family, settings in (("level", LEVELS), ("per_free", PER_FREE)):
            points = []
            cells = []
            for setting in settings:
                runs = [r for j, r in mine.items() if j.family == family and j.setting == setting]
                occ = statistics.mean(r.occupancy for r in runs)
                ab = statistics.mean(r.abandon_rate for r in runs)
                points.append((setting, ab, occ))
                cells.append(f"{setting:g}: {occ:.1%} at {ab:.2%}")
            print(f"  {family}: at 3% {at_target(points)}; " + "; ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
