"""The simulator over several days: one pacer and one abandon ledger go on from one day's shift to
the next, so day 2 starts with day 1's live answers in its 24 h window (the engine reads the same
window from the attempts ledger). Small, fast runs; the full-length figures are in
tests/bench/test_pacing_bench.py and docs/pacing.md ("Several days")."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dialer.pacing import (
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Policy,
    PredictivePacer,
    PredictiveSettings,
    ProgressivePacer,
)
from dialer.pacing.simulator import Simulation, Staffing, Traffic, simulate
from dialer.pacing.simulator.run import DAY_KEYS
from dialer.pacing.simulator.traffic import shift
from tests.utils.cli import CliRunner
from warmline.cli import app

SHORT = Traffic(hours=0.5)


def _sim(days: int, pacing: PacingConfig | None = None, relearn_each_day: bool = False) -> Simulation:
    return Simulation(
        Policy.predictive,
        SHORT,
        Staffing(agents=6),
        seed=3,
        pacing=pacing or PacingConfig(),
        days=days,
        relearn_each_day=relearn_each_day,
    )


def test_day_one_is_the_one_day_run() -> None:
    one = simulate(_sim(1))
    three = simulate(_sim(3))
    assert one.days == () and "days" not in one.as_json()
    first = three.days[0]
    # Up to the shift's end day 1 is the same run; only the calls still in flight then differ (a
    # one-day run leaves them, several days resolve them before the agents leave).
    assert (first.occupancy, first.dials) == (one.occupancy, one.dials)
    assert first.live_answers >= one.live_answers
    assert len(three.days) == 3
    assert three.dials == sum(d.dials for d in three.days)
    assert three.live_answers == sum(d.live_answers for d in three.days)
    assert three.abandoned == sum(d.abandoned for d in three.days)
    assert three.worst_window_abandon == max(d.worst_window_abandon for d in three.days)


def test_the_window_carries_over_to_the_next_morning() -> None:
    result = simulate(_sim(3))
    day1, day2, day3 = result.days
    assert day1.window_at_start == {"share": 0.0, "live_answers": 0, "abandoned": 0}
    # Day 1's answers all ended less than 24 h before day 2's 09:00; day 2's likewise for day 3.
    assert day2.window_at_start["live_answers"] == day1.live_answers
    assert day2.window_at_start["abandoned"] == day1.abandoned
    assert day3.window_at_start["live_answers"] == day2.live_answers
    # A one-hour window is empty again every morning.
    short = simulate(_sim(2, pacing=PacingConfig(windows_s=(3600.0,))))
    assert short.days[1].window_at_start["live_answers"] == 0


def test_yesterdays_answers_let_the_pacer_start_beyond_progressive() -> None:
    """A cold window holds the pacer to progressive until its answers pay for an abandon; a window
    carrying yesterday's answers does not: the second morning is less often at the cap than with a
    window that starts empty again (a one-hour window), and its agents busier. (The cap looks two
    minutes ahead here: with the default hour, half-hour shifts' answers all leave the 24 h window
    within the next morning's first hour, so none could be counted on.)"""
    ahead = 120.0
    result = simulate(_sim(2, pacing=PacingConfig(guard_horizon_s=ahead)))
    cold = simulate(_sim(2, pacing=PacingConfig(windows_s=(3600.0,), guard_horizon_s=ahead)))
    assert result.days[0] == cold.days[0]  # the same first day
    assert result.days[1].cap_passes < cold.days[1].cap_passes
    assert result.days[1].occupancy > cold.days[1].occupancy
    # An hour ahead, yesterday's half hour is about to leave: no help, and no harm.
    assert simulate(_sim(2)).days[1].cap_passes == cold.days[1].cap_passes


def test_every_live_answer_is_settled_at_each_days_end() -> None:
    """Several days: the dialer stops at the shift's end and the ready agents stay until the calls
    in flight resolve, so every live answer went to an agent or was abandoned, within the cap."""
    result = simulate(_sim(2))
    assert result.live_answers == result.connected + result.abandoned
    assert all(d.worst_window_abandon <= 0.03 for d in result.days)


def test_each_day_has_shifts_of_its_own_and_a_fresh_pacer_if_asked() -> None:
    traffic, staff = Traffic(), Staffing()
    assert shift(staff, traffic, 9, 3) == shift(staff, traffic, 9, 3, 0)
    assert shift(staff, traffic, 9, 3, 1) != shift(staff, traffic, 9, 3, 0)
    kept = simulate(_sim(2))
    relearnt = simulate(_sim(2, relearn_each_day=True))
    assert relearnt.reasons["learning"] > kept.reasons.get("learning", 0)
    with pytest.raises(ValueError, match="at most"):
        Simulation(Policy.predictive, Traffic(hours=22), days=2)
    with pytest.raises(ValueError, match="at least 1"):
        Simulation(Policy.predictive, SHORT, days=0)


def test_the_days_run_back_to_back_at_nine() -> None:
    """ADAPT_TAPERED reads the time of day: each morning is 09:00 again; and each day's breaks are
    due that day, from its own start (every 20 minutes give or take 25%: none before 09:15)."""
    seen: list[tuple[float, int]] = []

    class Clock(ProgressivePacer):
        def decide(self, s: PacingSnapshot) -> PacingDecision:
            assert s.time_of_day_s is not None
            seen.append((s.time_of_day_s, s.agents_paused))
            return super().decide(s)

    sim = replace(_sim(2), staffing=Staffing(agents=6, break_every_s=1200.0))
    simulate(sim, Clock())
    nine = 9 * 3600
    starts = [i for i, (t, _) in enumerate(seen) if t == nine]
    assert len(starts) == 2 and max(t for t, _ in seen) <= nine + 1800
    for day in (seen[: starts[1]], seen[starts[1] :]):
        assert max(p for t, p in day if t < nine + 880) == 0
        assert max(p for _, p in day) > 0


def _cli(*extra: str) -> list[str]:
    return [
        "pacing", "simulate", "--policy", "predictive", "--agents", "6", "--answer-rate", "0.3",
        "--talk-mean", "120", "--wrap", "20", "--hours", "0.25", "--seed", "3", *extra,
    ]  # fmt: skip


def test_cli_days() -> None:
    result = CliRunner().invoke(app, _cli("--days", "2", "--json"))
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert list(figures)[:7] == [
        "occupancy", "abandon_rate", "worst_window_abandon", "dials", "live_answers", "abandoned",
        "agent_wait_s",
    ]  # fmt: skip
    assert len(figures["days"]) == 2 and list(figures["days"][0]) == list(DAY_KEYS)
    text = CliRunner().invoke(app, _cli("--days", "2"))
    assert text.exit_code == 0 and "第 2 天" in text.stdout
    bad = CliRunner().invoke(app, [*_cli("--days", "2")[:12], "21", *_cli()[13:], "--days", "2"])
    assert bad.exit_code == 2 and "--hours" in bad.output


def test_the_cap_holds_across_days_even_for_a_reckless_predictor() -> None:
    """Over several days yesterday's answers leave the 24 h window while today's abandons stay, so
    a window's share can rise with no new abandon. Budgeting against the answers still in the
    window two minutes ahead let a reckless predictor (any marginal risk, never holding back) pass
    the cap on day 3; an hour ahead (the default) it holds, every day."""
    reckless = PredictiveSettings(alpha_max=1.0, hold_from=10.0, progressive_at=11.0)
    traffic = Traffic(hours=1.0, answer_rate=0.15, answer_rate_end=0.45)

    def worst(config: PacingConfig) -> float:
        sim = Simulation(Policy.predictive, traffic, Staffing(agents=10), seed=2, pacing=config, days=3)
        result = simulate(sim, PredictivePacer(sim.pacing, reckless))
        assert result.abandoned > 0  # it did push against the cap
        return result.worst_window_abandon

    assert worst(PacingConfig(guard_horizon_s=120.0)) > 0.03
    assert PacingConfig().horizon_s == 3600.0
    assert worst(PacingConfig()) <= 0.03
    # A short window looks a 24th of itself ahead, never less than a call can take.
    assert PacingConfig(windows_s=(7200.0,)).horizon_s == 300.0
    assert PacingConfig(windows_s=(1800.0,)).horizon_s == 120.0
