"""The pacers' decisions on hand-made snapshots: zero agents, inbound callers first, the hard cap
(never passed, whatever the soft layer wants), falling back to progressive near the limit,
VICIdial ADAPT_TAPERED's arithmetic, and the reasons in Chinese and English."""

from __future__ import annotations

import random

import pytest

from core.i18n import use_locale
from dialer.pacing import (
    AbandonWindow,
    AdaptPacer,
    AdaptSettings,
    BusyAgent,
    DialResolved,
    DialResult,
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Phase,
    Policy,
    PredictivePacer,
    PredictiveSettings,
    ProgressivePacer,
    TalkEnded,
    WrapEnded,
    capped_calls,
    make_pacer,
    progressive_calls,
)
from dialer.pacing.model import Observation

HOUR = 3600.0


def trained(settings: PredictiveSettings | None = None) -> PredictivePacer:
    """A predictive pacer that has seen 400 dials (30% live after 4-14 s, the rest ringing out or
    busy), 100 talks (~180 s) and 100 wrap-ups (~30 s), as a campaign's first hour would show."""
    rng = random.Random(5)
    seen: list[Observation] = []
    for _ in range(400):
        if rng.random() < 0.30:
            seen.append(DialResolved(rng.uniform(4.0, 14.0), DialResult.live))
        else:
            seen.append(DialResolved(rng.choice([3.0, 30.0, 30.0]), DialResult.no_answer))
    seen += [TalkEnded(rng.lognormvariate(4.9, 0.8)) for _ in range(100)]
    seen += [WrapEnded(rng.uniform(25.0, 35.0), ready_again=True) for _ in range(100)]
    pacer = PredictivePacer(settings=settings)
    pacer.observe(PacingSnapshot(now=0.0, agents_free=0, observations=tuple(seen)))
    return pacer


def calm_windows(live: int = 2000, abandoned: int = 10) -> tuple[AbandonWindow, ...]:
    return (AbandonWindow(86_400.0, live, abandoned), AbandonWindow(30 * 86_400.0, live, abandoned))


def busy(wrapping: list[float], talking: int) -> tuple[BusyAgent, ...]:
    return tuple(BusyAgent(Phase.wrap, e) for e in wrapping) + tuple(
        BusyAgent(Phase.talk, 60.0) for _ in range(talking)
    )


@pytest.mark.parametrize("policy", list(Policy))
def test_no_agent_no_call(policy: Policy) -> None:
    pacer = make_pacer(policy)
    for snapshot in (
        PacingSnapshot(now=0.0, agents_free=0, abandon=calm_windows()),
        PacingSnapshot(now=10.0, agents_free=0, agents_paused=5, abandon=calm_windows()),
    ):
        decision = pacer.decide(snapshot)
        assert decision == PacingDecision(0, "no_agents")


def test_progressive_keeps_one_call_per_free_agent() -> None:
    s = PacingSnapshot(now=0.0, agents_free=5, calls_ringing=(3.0, 10.0), calls_waiting=1)
    decision = ProgressivePacer().decide(s)
    assert decision.calls_to_start == 2 and decision.reason_code == "progressive"
    assert ProgressivePacer().decide(PacingSnapshot(now=0.0, agents_free=0, agents_busy=busy([], 3))) == (
        PacingDecision(0, "agents_busy")
    )


@pytest.mark.parametrize("policy", [Policy.progressive, Policy.predictive])
def test_inbound_callers_waiting_take_blended_agents_first(policy: Policy) -> None:
    pacer = trained() if policy is Policy.predictive else make_pacer(policy)
    outbound_only = PacingSnapshot(now=0.0, agents_free=3, agents_busy=busy([], 10), abandon=calm_windows())
    blended = PacingSnapshot(
        now=0.0, agents_free=3, agents_busy=busy([], 10), inbound_waiting=2, abandon=calm_windows()
    )
    assert progressive_calls(blended) == 1
    alone, with_inbound = pacer.decide(outbound_only), pacer.decide(blended)
    assert with_inbound.calls_to_start < alone.calls_to_start
    assert with_inbound.reason_code == "inbound_first"
    assert with_inbound.reason_params == {"inbound": 2}
    # As many inbound callers as free agents: no outbound call at all.
    full = PacingSnapshot(
        now=0.0, agents_free=3, agents_busy=busy([], 10), inbound_waiting=3, abandon=calm_windows()
    )
    assert pacer.decide(full).calls_to_start == 0


def test_predictive_dials_ahead_for_agents_about_to_be_free() -> None:
    pacer = trained()
    s = PacingSnapshot(
        now=0.0, agents_free=1, agents_busy=busy([26.0, 28.0, 29.0, 25.0], 12), abandon=calm_windows()
    )
    decision = pacer.decide(s)
    assert progressive_calls(s) == 1
    assert decision.calls_to_start > 1
    assert decision.reason_code == "predicting"
    assert decision.reason_params["free"] == 1


def test_predictive_learns_before_it_predicts() -> None:
    pacer = PredictivePacer()
    s = PacingSnapshot(now=0.0, agents_free=4, agents_busy=busy([28.0] * 5, 5), abandon=calm_windows())
    decision = pacer.decide(s)
    assert decision == PacingDecision(4, "learning", {"needed": 40})


def test_capped_calls_is_the_worst_case_bound() -> None:
    config = PacingConfig(abandon_limit=0.03)
    # 1000 live answers, 20 abandoned: room for abandons while (20 + excess) <= 3% of (1000 + R + n).
    s = PacingSnapshot(now=0.0, agents_free=2, calls_ringing=(1.0,) * 4, abandon=calm_windows(1000, 20))
    n = capped_calls(s, config)
    excess = len(s.calls_ringing) + n - s.agents_free
    assert 20 + excess <= 0.03 * (1000 + len(s.calls_ringing) + n)
    assert 20 + excess + 1 > 0.03 * (1000 + len(s.calls_ringing) + n + 1)
    # A fresh campaign (no window yet): progressive, nothing more.
    fresh = PacingSnapshot(now=0.0, agents_free=6, calls_ringing=(1.0,))
    assert capped_calls(fresh, config) == progressive_calls(fresh) == 5
    # The budget is what stays in the window: answers about to leave it do not count.
    leaving = PacingSnapshot(
        now=0.0,
        agents_free=2,
        abandon=(AbandonWindow(86_400.0, 1000, 20, live_answers_kept=600),),
    )
    assert capped_calls(leaving, config) == progressive_calls(leaving)


def test_near_the_limit_predictive_falls_back_to_progressive() -> None:
    pacer = trained()
    agents = busy([26.0, 28.0, 29.0, 25.0], 12)
    far = PacingSnapshot(now=0.0, agents_free=1, agents_busy=agents, abandon=calm_windows(2000, 10))
    near = PacingSnapshot(now=1.0, agents_free=1, agents_busy=agents, abandon=calm_windows(2000, 58))
    assert pacer.decide(far).calls_to_start > progressive_calls(far)
    decision = pacer.decide(near)  # 2.9% of 3%
    assert decision.calls_to_start == progressive_calls(near) == 1
    assert decision.reason_code in ("abandon_cap", "holding_back")
    assert decision.reason_params == {"rate": 0.029, "limit": 0.03}
    halfway = PacingSnapshot(now=2.0, agents_free=1, agents_busy=agents, abandon=calm_windows(2000, 46))
    assert (
        progressive_calls(halfway) <= pacer.decide(halfway).calls_to_start <= pacer.decide(far).calls_to_start
    )


def test_the_hard_cap_holds_whatever_the_soft_layer_wants() -> None:
    """A reckless predictor (any marginal risk accepted, no holding back) on random states: every
    decision keeps the worst case -- all calls in flight answering live at once -- within the limit."""
    reckless = trained(PredictiveSettings(alpha_max=1.0, hold_from=10.0, progressive_at=11.0))
    config = reckless.config
    rng = random.Random(11)
    checked = 0
    for i in range(500):
        live = rng.randint(0, 3000)
        abandoned = rng.randint(0, int(0.04 * live) + 1)
        s = PacingSnapshot(
            now=float(i),
            agents_free=rng.randint(0, 6),
            agents_busy=busy([rng.uniform(0, 40) for _ in range(rng.randint(0, 6))], rng.randint(0, 14)),
            calls_ringing=tuple(rng.uniform(0, 30) for _ in range(rng.randint(0, 12))),
            calls_waiting=rng.randint(0, 2),
            inbound_waiting=rng.randint(0, 2),
            abandon=calm_windows(live, abandoned),
        )
        n = reckless.decide(s).calls_to_start
        worst = len(s.calls_ringing) + s.calls_waiting + s.inbound_waiting + n - s.agents_free
        if n > progressive_calls(s):  # beyond progressive, only within what the window can absorb
            assert abandoned + worst <= config.abandon_limit * (live + len(s.calls_ringing) + n) + 1e-9
            checked += 1
    assert checked > 50


def test_adapt_raises_the_dial_level_by_the_differential() -> None:
    pacer = AdaptPacer(settings=AdaptSettings(intensity=0.0))
    agents = busy([], 18)
    for t in range(16):  # 2 agents ready, nobody waiting, 20 agents: +10% at the 15 s recalculation
        pacer.decide(PacingSnapshot(now=float(t), agents_free=2, agents_busy=agents, time_of_day_s=9 * HOUR))
    assert pacer.level == pytest.approx(1.1)
    intense = AdaptPacer(settings=AdaptSettings(intensity=20.0))
    for t in range(16):
        intense.decide(
            PacingSnapshot(now=float(t), agents_free=2, agents_busy=agents, time_of_day_s=9 * HOUR)
        )
    assert intense.level == pytest.approx(1.12)  # the 10% raise scaled by 1 + 20/100


def test_adapt_caps_floors_and_places_calls_every_loop() -> None:
    pacer = AdaptPacer()
    pacer.level = 2.95
    for t in range(16):
        pacer.decide(
            PacingSnapshot(now=float(t), agents_free=5, agents_busy=busy([], 15), time_of_day_s=9 * HOUR)
        )
    assert pacer.level == 3.0  # adaptive_maximum_level
    # round(level x (ready + talking)) - calls already live; wrap-up (paused in VICIdial) not counted.
    s = PacingSnapshot(now=100.0, agents_free=2, agents_busy=busy([10.0], 4), calls_ringing=(1.0,) * 5)
    decision = pacer.decide(s)
    assert decision.calls_to_start == round(3.0 * 6) - 5 - 4
    assert decision.reason_code == "adapt_level"
    assert pacer.decide(PacingSnapshot(now=101.0, agents_free=2)).reason_code == "adapt_loop"
    waiting = AdaptPacer()
    for t in range(16):  # more callers waiting than agents ready: the level sinks, but not below 1
        waiting.decide(PacingSnapshot(now=float(t), agents_free=0, calls_waiting=3, agents_busy=busy([], 10)))
    assert waiting.level == 1.0


@pytest.mark.parametrize(
    ("clock", "expected"),
    [(10 * HOUR, 2.0), (13 * HOUR, 2.0 * 0.8), (21 * HOUR + 60, 1.0)],
    ids=["before 11:00 the taper is 1", "13:00 tapers by 0.8", "after 21:00 level 1"],
)
def test_adapt_tapered_drop_rule(clock: float, expected: float) -> None:
    pacer = AdaptPacer()
    pacer.level = 2.0
    # 100 dials ended, 30 live answers of which 3 abandoned today: 10% > 3%. Nobody ready or waiting.
    dials = tuple(DialResolved(10.0, DialResult.no_answer) for _ in range(100))
    today = (AbandonWindow(86_400.0, 30, 3),)
    for t in range(16):
        pacer.decide(
            PacingSnapshot(
                now=float(t),
                agents_free=0,
                agents_busy=busy([], 10),
                observations=dials if t == 0 else (),
                abandon=today,
                time_of_day_s=clock + t,
            )
        )
    assert pacer.level == pytest.approx(expected)


def test_reasons_are_said_in_chinese_by_default_and_in_english() -> None:
    decision = PacingDecision(3, "holding_back", {"rate": 0.027, "limit": 0.03})
    assert decision.reason_text() == "放缓拨号：放弃率 2.7%，上限 3%"
    with use_locale("en"):
        assert decision.reason_text() == "holding back: abandon 2.7% of 3%"
    with pytest.raises(ValueError, match="negative"):
        PacingDecision(-1, "progressive")
    with pytest.raises(ValueError, match="unknown pacing reason"):
        PacingDecision(1, "because")
    with pytest.raises(ValueError, match="abandon limit"):
        PacingConfig(abandon_limit=0.0)


def trained_with_answers() -> PredictivePacer:
    """400 dials whose answers the engine saw: 30% live (answered after 3-12 s, AMD's verdict 1.8 s
    later), 25% machines (answered after 10-20 s, verdict 3.2 s later), the rest busy or ringing out."""
    rng = random.Random(7)
    seen: list[Observation] = []
    for _ in range(400):
        u = rng.random()
        if u < 0.30:
            answered = rng.uniform(3.0, 12.0)
            seen.append(DialResolved(answered + 1.8, DialResult.live, answered))
        elif u < 0.55:
            answered = rng.uniform(10.0, 20.0)
            seen.append(DialResolved(answered + 3.2, DialResult.machine, answered))
        else:
            seen.append(DialResolved(rng.choice([3.0, 30.0, 30.0]), DialResult.no_answer))
    seen += [TalkEnded(rng.lognormvariate(4.9, 0.8)) for _ in range(100)]
    seen += [WrapEnded(rng.uniform(25.0, 35.0), ready_again=True) for _ in range(100)]
    pacer = PredictivePacer()
    pacer.observe(PacingSnapshot(now=0.0, agents_free=0, observations=tuple(seen)))
    return pacer


def test_predictive_counts_calls_amd_is_analysing_apart_from_those_still_ringing() -> None:
    """Four calls 8 s old: just answered (AMD analysing), they are about to need agents; still
    ringing, they are less likely to than an average unresolved call. Not told: in between."""

    def calls(answered: tuple[float | None, ...]) -> int:
        s = PacingSnapshot(
            now=0.0,
            agents_free=4,
            agents_busy=busy([26.0, 28.0, 29.0, 25.0], 12),
            calls_ringing=(8.0,) * 4,
            calls_answered=answered,
            abandon=calm_windows(),
        )
        return trained_with_answers().decide(s).calls_to_start

    analysing, untold, ringing = calls((0.3,) * 4), calls(()), calls((None,) * 4)
    assert analysing < untold < ringing
    late = calls((3.0,) * 4)  # no verdict 3 s after the answer: a machine, most likely
    assert late > analysing
    with pytest.raises(ValueError):
        PacingSnapshot(now=0.0, agents_free=1, calls_ringing=(1.0, 2.0), calls_answered=(None,))
