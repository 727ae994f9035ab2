"""Benchmark: the pacers on simulated shifts, common random numbers, three seeds.

    .venv/bin/pytest -m bench -s tests/bench/test_pacing_bench.py

Each scenario runs predictive, progressive and VICIdial's ADAPT_TAPERED on the same traffic
(same seed: the same callees in the same dial order, the same agents' shifts). The figures are
simulated and deterministic by seed, so they are asserted; no wall-clock figure is. Each printed
line names the `warmline pacing simulate` command that reproduces it.

Scenarios (the issue's "done when"): 20 agents, 30% live answers, 180 s mean talk (lognormal),
30 s wrap-up, an 8-hour shift; the same with the answer rate drifting 0.30 -> 0.45 mid-shift; 5
agents with 300 s talk (the elder line). `test_several_days` runs predictive on each over three
consecutive days (the 24 h window carried from one day's shift to the next) and prints each day.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pytest

from dialer.pacing import Policy
from dialer.pacing.simulator import Result, Simulation, Staffing, Traffic, simulate

pytestmark = pytest.mark.bench

SEEDS = (1, 2, 3)
HOURS = 8.0
CAP = 0.03
ISSUE_GOAL = 0.90  # the issue's occupancy goal for predictive in the first scenario


@dataclass(frozen=True)
class Scenario:
    name: str
    agents: int
    answer_rate: float
    talk_mean_s: float
    answer_rate_end: float | None = None
    wrap_s: float = 30.0

    def traffic(self) -> Traffic:
        return Traffic(
            answer_rate=self.answer_rate,
            answer_rate_end=self.answer_rate_end,
            hours=HOURS,
            talk_mean_s=self.talk_mean_s,
            wrap_mean_s=self.wrap_s,
        )

    def command(self, policy: Policy, seed: int) -> str:
        drift = f" --answer-rate-end {self.answer_rate_end}" if self.answer_rate_end is not None else ""
        return (
            f"warmline pacing simulate --policy {policy} --agents {self.agents} --answer-rate"
            f" {self.answer_rate}{drift} --talk-mean {self.talk_mean_s:g} --wrap {self.wrap_s:g}"
            f" --hours {HOURS:g} --seed {seed} --json"
        )


BASE = Scenario("20 agents, 30% live, 180 s talk", 20, 0.30, 180.0)
DRIFT = Scenario("20 agents, live 30% -> 45% mid-shift", 20, 0.30, 180.0, answer_rate_end=0.45)
ELDER = Scenario("5 agents, 30% live, 300 s talk (elder line)", 5, 0.30, 300.0)


def run(scenario: Scenario) -> dict[Policy, list[Result]]:
    staff = Staffing(agents=scenario.agents)
    return {
        policy: [simulate(Simulation(policy, scenario.traffic(), staff, seed=seed)) for seed in SEEDS]
        for policy in Policy
    }


def report(scenario: Scenario, results: dict[Policy, list[Result]]) -> None:
    print(f"\n{scenario.name}, {HOURS:g} h, seeds {', '.join(map(str, SEEDS))}")
    print(
        f"{'policy':<12} {'seed':>4} {'occup.':>7} {'abandon':>8} {'worst':>7} {'dials':>6} {'live':>5}"
        f" {'aband.':>6} {'wait s':>7}"
    )
    for policy, runs in results.items():
        for seed, r in zip(SEEDS, runs, strict=True):
            print(
                f"{policy:<12} {seed:>4} {r.occupancy:>7.1%} {r.abandon_rate:>8.2%}"
                f" {r.worst_window_abandon:>7.2%} {r.dials:>6} {r.live_answers:>5} {r.abandoned:>6}"
                f" {r.agent_wait_s:>7.1f}   # {scenario.command(policy, seed)}"
            )
    mean = {p: statistics.mean(r.occupancy for r in runs) for p, runs in results.items()}
    abandon = {p: statistics.mean(r.abandon_rate for r in runs) for p, runs in results.items()}
    print(
        f"mean occupancy: predictive {mean[Policy.predictive]:.1%}, progressive {mean[Policy.progressive]:.1%},"
        f" adapt {mean[Policy.adapt]:.1%}; predictive / progressive = "
        f"{mean[Policy.predictive] / mean[Policy.progressive]:.3f},"
        f" predictive / adapt = {mean[Policy.predictive] / mean[Policy.adapt]:.3f}"
    )
    print(
        f"mean abandon: predictive {abandon[Policy.predictive]:.2%}, progressive"
        f" {abandon[Policy.progressive]:.2%}, adapt {abandon[Policy.adapt]:.2%}"
    )


def check_common(results: dict[Policy, list[Result]]) -> None:
    for r in results[Policy.predictive]:
        assert r.worst_window_abandon <= CAP, r
    for r in results[Policy.progressive]:
        assert r.abandoned == 0, r  # one call per free agent never strands a caller
    for pred, prog in zip(results[Policy.predictive], results[Policy.progressive], strict=True):
        assert pred.occupancy > prog.occupancy and pred.agent_wait_s < prog.agent_wait_s


def test_twenty_agents() -> None:
    results = run(BASE)
    report(BASE, results)
    check_common(results)
    occupancy = [r.occupancy for r in results[Policy.predictive]]
    print(
        f"issue goal: predictive >= {ISSUE_GOAL:.0%} occupancy at worst window <= {CAP:.0%}:"
        f" {'met' if min(occupancy) >= ISSUE_GOAL else 'NOT met'} (lowest seed {min(occupancy):.1%});"
        " see docs/pacing.md, 'What limits occupancy'"
    )
    assert min(occupancy) >= 0.87
    for pred, prog in zip(results[Policy.predictive], results[Policy.progressive], strict=True):
        assert pred.occupancy >= prog.occupancy + 0.10
    for r in results[Policy.adapt]:  # ADAPT_TAPERED has no cap before 11:00 and sees no 2 s drops
        assert r.abandon_rate > CAP


def test_answer_rate_drift() -> None:
    results = run(DRIFT)
    report(DRIFT, results)
    check_common(results)
    assert min(r.occupancy for r in results[Policy.predictive]) >= 0.87


def test_elder_line() -> None:
    results = run(ELDER)
    report(ELDER, results)
    check_common(results)
    assert min(r.occupancy for r in results[Policy.predictive]) >= 0.83


DAYS = 3


def run_days(scenario: Scenario, seed: int) -> Result:
    staff = Staffing(agents=scenario.agents)
    return simulate(Simulation(Policy.predictive, scenario.traffic(), staff, seed=seed, days=DAYS))


def test_several_days() -> None:
    """Predictive over three consecutive days (one pacer, the 24 h window carried from one day's
    shift to the next), each scenario and seed; day 1 is the one-day run's shift."""
    jobs = [(scenario, seed) for scenario in (BASE, DRIFT, ELDER) for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:  # two simulations at a time: the machine is shared
        results = list(pool.map(run_days, *zip(*jobs, strict=True)))
    print(f"\npredictive, {DAYS} days of {HOURS:g} h (the 24 h window carried over), seeds {SEEDS}")
    print(
        f"{'scenario':<46} {'seed':>4} {'day':>3} {'occup.':>7} {'1st h':>7} {'abandon':>8} {'worst':>7} {'carried':>8}"
    )
    for (scenario, seed), r in zip(jobs, results, strict=True):
        for number, day in enumerate(r.days, 1):
            print(
                f"{scenario.name:<46} {seed:>4} {number:>3} {day.occupancy:>7.1%} {day.first_hour_occupancy:>7.1%}"
                f" {day.abandon_rate:>8.2%} {day.worst_window_abandon:>7.2%}"
                f" {day.window_at_start['share']:>8.2%}"
            )
        print(
            f"{'':<46} {'':>4} all {r.occupancy:>7.1%} {'':>7} {r.abandon_rate:>8.2%} {r.worst_window_abandon:>7.2%}"
            f"   # {scenario.command(Policy.predictive, seed)} --days {DAYS}"
        )
    for scenario in (BASE, DRIFT, ELDER):
        runs = [r for (s, _), r in zip(jobs, results, strict=True) if s is scenario]
        first = statistics.mean(r.days[0].occupancy for r in runs)
        later = statistics.mean(d.occupancy for r in runs for d in r.days[1:])
        print(
            f"{scenario.name}: day 1 {first:.1%}, days 2-{DAYS} {later:.1%} (x{later / first:.3f}),"
            f" worst window {max(r.worst_window_abandon for r in runs):.2%}"
        )
    for r in results:
        assert r.worst_window_abandon <= CAP, r
        assert r.live_answers == r.connected + r.abandoned  # every answer settled each evening
        assert r.days[1].window_at_start["live_answers"] == r.days[0].live_answers
