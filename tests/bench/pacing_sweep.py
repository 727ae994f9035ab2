"""One predictive setting changed, over the bench's scenarios and seeds (issue 12's table in
docs/pacing.md, "What limits occupancy"):

    PYTHONPATH=$PWD .venv/bin/python -m tests.bench.pacing_sweep '{"alpha_max": 0.03}' [base,drift,elder]

The JSON names `PredictiveSettings` fields; the scenarios are test_pacing_bench.py's, 8 hours,
seeds 1, 2, 3, two at a time (the machine is shared). Prints each seed and the mean.
"""

from __future__ import annotations

import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dialer.pacing import Policy
from dialer.pacing.predictive import PredictivePacer, PredictiveSettings
from dialer.pacing.simulator import Result, Simulation, Staffing, simulate
from tests.bench.test_pacing_bench import BASE, DRIFT, ELDER, SEEDS, Scenario

SCENARIOS = {"base": BASE, "drift": DRIFT, "elder": ELDER}


def one(job: tuple[Scenario, int, dict[str, Any]]) -> Result:
    scenario, seed, change = job
    sim = Simulation(Policy.predictive, scenario.traffic(), Staffing(agents=scenario.agents), seed=seed)
    return simulate(sim, PredictivePacer(sim.pacing, PredictiveSettings(**change)))


def main(argv: list[str]) -> None:
    change = json.loads(argv[0]) if argv else {}
    names = argv[1].split(",") if len(argv) > 1 else list(SCENARIOS)
    jobs = [(SCENARIOS[name], seed, change) for name in names for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(one, jobs))
    print(json.dumps(change))
    for i, name in enumerate(names):
        runs = results[i * len(SEEDS) : (i + 1) * len(SEEDS)]
        for seed, r in zip(SEEDS, runs, strict=True):
            print(f"  {name} seed {seed}: {json.dumps(r.as_json())}")
        print(
            f"  {name} mean occupancy {statistics.mean(r.occupancy for r in runs):.4f},"
            f" abandon {statistics.mean(r.abandon_rate for r in runs):.4f},"
            f" worst window {max(r.worst_window_abandon for r in runs):.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
