"""Several days of a campaign: the bench's scenarios run D consecutive days (one pacer, one abandon
ledger), day by day (docs/pacing.md, "Several days"):

    PYTHONPATH=$PWD .venv/bin/python -m tests.bench.pacing_days [base,drift,elder] [days] [policy] [settings]

`settings`: a JSON object of `PredictiveSettings` fields changed (predictive only), as
tests/bench/pacing_sweep.py takes it.

Prints each seed's JSON (`warmline pacing simulate ... --days D --json`, the same figures) and the
worst 24 h share over *every* window, not only those ending at a live answer: a rolling window's
share also rises when older, cleaner answers leave it, between two answers
(`worst_any_window`). Two simulations at a time (the machine is shared).
"""

from __future__ import annotations

import json
import statistics
import sys
from bisect import bisect_right
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dialer.pacing import Policy, make_pacer
from dialer.pacing.estimators.ledger import AbandonLedger
from dialer.pacing.predictive import PredictivePacer, PredictiveSettings
from dialer.pacing.simulator import Result, Simulation, Staffing
from dialer.pacing.simulator.run import _Run
from tests.bench.test_pacing_bench import BASE, DRIFT, ELDER, SEEDS, Scenario

SCENARIOS = {"base": BASE, "drift": DRIFT, "elder": ELDER}


def worst_any_window(ledger: AbandonLedger, window_s: float, min_answers: int = 1) -> float:
    """The highest abandoned share of any window of `window_s` holding >= `min_answers` answers and
    ending while the campaign still runs (at its last answer at the latest): windows ending at each
    answer and just after each answer leaves."""
    times, before = ledger._times, ledger._abandoned_before
    worst = 0.0
    ends = [t for t in times] + [t + window_s for t in times if t + window_s <= times[-1]]
    for end in ends:
        start = bisect_right(times, end - window_s)
        stop = bisect_right(times, end)
        n = stop - start
        if n >= min_answers:
            worst = max(worst, (before[stop] - before[start]) / n)
    return worst


def one(job: tuple[Scenario, int, int, Policy, dict[str, Any]]) -> tuple[Result, float, float]:
    scenario, seed, days, policy, change = job
    sim = Simulation(policy, scenario.traffic(), Staffing(agents=scenario.agents), seed=seed, days=days)
    pacer = (
        PredictivePacer(sim.pacing, PredictiveSettings(**change))
        if change
        else make_pacer(policy, sim.pacing)
    )
    run = _Run(sim, pacer)
    result = run.run()
    window = sim.pacing.windows_s[0]
    return result, worst_any_window(run.ledger, window), worst_any_window(run.ledger, window, 100)


def main(argv: list[str]) -> None:
    names = argv[0].split(",") if argv else list(SCENARIOS)
    days = int(argv[1]) if len(argv) > 1 else 3
    policy = Policy(argv[2]) if len(argv) > 2 else Policy.predictive
    change = json.loads(argv[3]) if len(argv) > 3 else {}
    if change:
        print(json.dumps(change))
    jobs = [(SCENARIOS[name], seed, days, policy, change) for name in names for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(one, jobs))
    for i, name in enumerate(names):
        runs = results[i * len(SEEDS) : (i + 1) * len(SEEDS)]
        for seed, (r, any_w, any_100) in zip(SEEDS, runs, strict=True):
            print(f"{name} {policy} seed {seed} --days {days}: {json.dumps(r.as_json())}")
            print(f"  worst_any_window {any_w:.4f} (windows with >= 100 answers: {any_100:.4f})")
        for d in range(days):
            day = [r.days[d] for r, _, _ in runs]
            print(
                f"{name} day {d + 1}: occupancy {statistics.mean(x.occupancy for x in day):.4f}"
                f" ({', '.join(f'{x.occupancy:.3f}' for x in day)}), first hour"
                f" {statistics.mean(x.first_hour_occupancy for x in day):.4f}, abandon"
                f" {statistics.mean(x.abandon_rate for x in day):.4f}, worst window"
                f" {max(x.worst_window_abandon for x in day):.4f}, cap passes"
                f" {statistics.mean(x.cap_passes for x in day):.3f}"
            )
        print(
            f"{name} all days: occupancy {statistics.mean(r.occupancy for r, _, _ in runs):.4f}, worst window"
            f" {max(r.worst_window_abandon for r, _, _ in runs):.4f}, worst any window"
            f" {max(w for _, w, _ in runs):.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
