"""The simulator, unit-sized: the same seed gives the same shift, every policy meets the same callees
(common random numbers), the hard cap holds through an adversarial drift even for a reckless
predictor, predictive beats progressive, and `warmline pacing simulate` prints the contract's keys
(Chinese text by default). The full-length figures are in tests/bench/test_pacing_bench.py."""

from __future__ import annotations

import json

import pytest

from dialer.pacing import PacingConfig, Policy, PredictivePacer, PredictiveSettings
from dialer.pacing.simulator import JSON_KEYS, Simulation, Staffing, Traffic, simulate
from dialer.pacing.simulator.traffic import callee, shift
from tests.utils.cli import CliRunner
from warmline.cli import app


def test_same_seed_same_shift_and_results() -> None:
    sim = Simulation(Policy.predictive, Traffic(hours=0.5), Staffing(agents=8), seed=4)
    assert simulate(sim) == simulate(sim)
    other = simulate(Simulation(Policy.predictive, Traffic(hours=0.5), Staffing(agents=8), seed=5))
    assert other != simulate(sim)


def test_common_random_numbers_per_dial_index_and_agent() -> None:
    traffic = Traffic(hours=2)
    # The k-th dial meets the same callee whenever a policy places it (no drift)...
    assert [callee(traffic, 9, k, 0.0) for k in range(200)] == [
        callee(traffic, 9, k, 3000.0) for k in range(200)
    ]
    # ...and a drifting answer rate only moves the threshold its own uniform draw is held against.
    drifting = Traffic(hours=2, answer_rate=0.30, answer_rate_end=0.45)
    early = [callee(drifting, 9, k, 0.0).person for k in range(2000)]
    late = [callee(drifting, 9, k, 7200.0).person for k in range(2000)]
    assert all(b for a, b in zip(early, late, strict=True) if a)  # whoever answered early answers late
    assert 1.35 < sum(late) / sum(early) < 1.65
    assert shift(Staffing(), traffic, 9, 3) == shift(Staffing(), traffic, 9, 3)
    assert shift(Staffing(), traffic, 9, 3) != shift(Staffing(), traffic, 9, 4)


def test_the_cap_holds_through_an_adversarial_drift() -> None:
    """The answer rate triples mid-shift (0.15 -> 0.45) and the predictor is reckless (accepts any
    marginal risk, never holds back): the worst window still stays within the cap, for a big team
    and a small one."""
    reckless = PredictiveSettings(alpha_max=1.0, hold_from=10.0, progressive_at=11.0)
    for agents in (20, 3):
        sim = Simulation(
            Policy.predictive,
            Traffic(hours=1.5, answer_rate=0.15, answer_rate_end=0.45),
            Staffing(agents=agents),
            seed=2,
        )
        result = simulate(sim, PredictivePacer(sim.pacing, reckless))
        assert result.abandoned > 0  # it did push against the cap
        assert result.worst_window_abandon <= sim.pacing.abandon_limit
    tight = Simulation(
        Policy.predictive,
        Traffic(hours=1.0, answer_rate=0.2, answer_rate_end=0.5),
        Staffing(agents=10),
        seed=3,
        pacing=PacingConfig(abandon_limit=0.01),
    )
    assert simulate(tight, PredictivePacer(tight.pacing, reckless)).worst_window_abandon <= 0.01


def test_predictive_beats_progressive_within_the_cap() -> None:
    """Unit-sized (1.5 h, one seed) version of the benchmark's first line."""
    traffic, staff = Traffic(hours=1.5), Staffing(agents=20)
    progressive = simulate(Simulation(Policy.progressive, traffic, staff, seed=1))
    predictive = simulate(Simulation(Policy.predictive, traffic, staff, seed=1))
    adapt = simulate(Simulation(Policy.adapt, traffic, staff, seed=1))
    assert progressive.abandoned == 0  # one call per free agent never strands anyone
    assert predictive.occupancy > progressive.occupancy + 0.07
    assert predictive.agent_wait_s < progressive.agent_wait_s / 1.8
    assert predictive.worst_window_abandon <= 0.03
    assert adapt.dials > predictive.dials  # ADAPT_TAPERED runs up to its maximum level
    assert set(predictive.as_json()) == set(JSON_KEYS)


def _simulate_cli(*extra: str) -> list[str]:
    return [
        "pacing",
        "simulate",
        "--policy",
        "predictive",
        "--agents",
        "6",
        "--answer-rate",
        "0.3",
        "--talk-mean",
        "120",
        "--wrap",
        "20",
        "--hours",
        "0.25",
        "--seed",
        "3",
        *extra,
    ]


def test_cli_prints_the_contract_keys_as_json() -> None:
    result = CliRunner().invoke(app, _simulate_cli("--json", "--answer-rate-end", "0.4", "--talk-cv", "0.5"))
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert list(figures) == [
        "occupancy",
        "abandon_rate",
        "worst_window_abandon",
        "dials",
        "live_answers",
        "abandoned",
        "agent_wait_s",
    ]
    assert (
        0 < figures["occupancy"] <= 1 and figures["dials"] >= figures["live_answers"] >= figures["abandoned"]
    )


def test_cli_speaks_chinese_and_refuses_bad_input() -> None:
    result = CliRunner().invoke(app, _simulate_cli())
    assert result.exit_code == 0, result.output
    assert "占用率" in result.stdout and "预测式" in result.stdout and "放弃率" in result.stdout
    bad = CliRunner().invoke(app, [*_simulate_cli()[:6], "1.5", *_simulate_cli()[7:]])
    assert bad.exit_code == 2
    assert "--answer-rate" in bad.output


@pytest.mark.parametrize("option", ["--agents", "--hours"])
def test_cli_refuses_zero(option: str) -> None:
    args = _simulate_cli()
    args[args.index(option) + 1] = "0"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and option in result.output
