"""The pacer's estimators: live-answer rate with forgetting, time to answer, talk and wrap-up
durations, the abandon ledger over rolling windows, and the vectorised normal CDF."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from dialer.pacing.estimators import (
    AbandonLedger,
    AnswerRate,
    AnswerSignals,
    Durations,
    ResolutionTimes,
    lognormal_params,
)
from dialer.pacing.estimators.normal import normal_cdf


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_answer_rate_converges_and_follows_a_drift() -> None:
    rng = random.Random(7)
    rate = AnswerRate(half_life=200)
    for _ in range(2000):
        rate.record(rng.random() < 0.30)
    assert rate.rate == pytest.approx(0.30, abs=0.04)
    for _ in range(600):  # the list's answer rate jumps to 45%: three half-lives later it is there
        rate.record(rng.random() < 0.45)
    assert rate.rate == pytest.approx(0.45, abs=0.05)
    assert rate.upper() > rate.rate


def test_answer_rate_bound_narrows_with_evidence_and_prior_holds_the_start() -> None:
    fresh = AnswerRate(prior=0.25, prior_weight=10)
    assert fresh.rate == 0.25
    fresh.record(True)  # one live answer does not make it 100%
    assert fresh.rate < 0.35
    few, many = AnswerRate(half_life=1e9), AnswerRate(half_life=1e9)
    for i in range(50):
        few.record(i % 3 == 0)
    for i in range(5000):
        many.record(i % 3 == 0)
    assert few.upper() - few.rate > many.upper() - many.rate > 0
    with pytest.raises(ValueError):
        AnswerRate(half_life=0)


def test_resolution_times_condition_on_a_calls_age() -> None:
    times = ResolutionTimes(size=100)
    for t in (4.0, 6.0, 8.0, 10.0):  # live answers
        times.record(t, True)
    for t in (3.0, 30.0, 30.0, 30.0):  # busy, then ring-outs
        times.record(t, False)
    assert times.live_quantiles(4) == [4.0, 6.0, 8.0, 10.0]
    assert times.live_cdf(7.0) == 0.5
    # A fresh call, live with p = 0.5: half of its live answers come within 7 s.
    assert times.live_within(0.0, 7.0, 0.5) == pytest.approx(0.25)
    # Still ringing at 9 s: the only live answer left (10 s) against three ring-outs (30 s).
    assert times.live_within(9.0, 5.0, 0.5) == pytest.approx(0.125 / (0.125 + 0.375))
    # Past every live answer seen: it will ring out.
    assert times.live_within(12.0, 10.0, 0.5) == 0.0
    arr = times.live_within_array(np.array([0.0, 9.0, 12.0]), np.array([7.0, 5.0, 10.0]), 0.5)
    assert arr.tolist() == pytest.approx([0.25, 0.25, 0.0])


def test_answer_signals_tell_a_call_in_amds_analysis_from_one_still_ringing() -> None:
    signals = AnswerSignals(size=100)
    signals.record(6.0, True, 4.0)  # live: answered at 4 s, AMD's verdict 2 s later
    signals.record(10.0, True, 8.0)
    signals.record(14.0, False, 10.0)  # a machine: answered at 10 s, verdict 4 s later
    signals.record(3.0, False, None)  # busy
    signals.record(30.0, False, None)  # ring-outs
    signals.record(30.0, False, None)
    assert signals.answered_count == 3
    # Unanswered at 5 s: the live one answered at 8 s against the machine and two ring-outs.
    ringing = signals.ringing_live_within(np.array([5.0]), np.array([10.0]), 0.5)
    assert ringing.tolist() == pytest.approx([0.25 / (0.25 + 0.375)])
    # Answered 1 s ago, no verdict: live answers' verdicts come 2 s after, the machine's 4 s.
    analysing = signals.analysing_live_within(np.array([1.0, 2.5]), np.array([2.0, 2.0]), 0.5)
    assert analysing.tolist() == pytest.approx([0.5 / 0.625, 0.0])


def test_resolution_times_forget_beyond_their_size() -> None:
    times = ResolutionTimes(size=3)
    for t in (1.0, 2.0, 3.0, 4.0):
        times.record(t, True)
    assert times.count == 3 and times.live_quantiles(3) == [2.0, 3.0, 4.0]


def test_durations_fit_a_lognormal_and_answer_how_soon_a_call_ends() -> None:
    rng = random.Random(3)
    mu, sigma = lognormal_params(180.0, 1.0)
    talk = Durations(prior_mean=120.0, half_life=1e9, sample_size=5000)
    for _ in range(5000):
        talk.record(math.exp(rng.gauss(mu, sigma)))
    assert talk.mean == pytest.approx(180.0, rel=0.08)
    assert talk.done_within(60.0, 0.0) == 0.0
    soon, later = talk.done_within(60.0, 30.0), talk.done_within(60.0, 120.0)
    assert 0 < soon < later < 1
    # The sample and the fit agree where the sample has data, and the fit takes over beyond it.
    exact = (talk.cdf(90.0) - talk.cdf(60.0)) / (1 - talk.cdf(60.0))
    assert soon == pytest.approx(exact, abs=0.03)
    beyond = max(talk.sample) + 100.0
    assert talk.done_within(beyond, 60.0) == pytest.approx(
        (talk.cdf(beyond + 60.0) - talk.cdf(beyond)) / (1 - talk.cdf(beyond)), abs=1e-4
    )
    grid = talk.done_within_array(np.array([[60.0], [200.0]]), np.array([[30.0, 120.0]]))
    assert grid[0].tolist() == pytest.approx([soon, later])


def test_durations_follow_the_campaign_not_the_prior() -> None:
    wrap = Durations(prior_mean=20.0, prior_cv=0.5, half_life=50)
    for _ in range(300):
        wrap.record(45.0)
    assert wrap.mean == pytest.approx(45.0, rel=0.05)
    assert wrap.quantile(0.5) == 45.0
    with pytest.raises(ValueError):
        lognormal_params(0.0, 1.0)


def test_ledger_counts_rolling_windows_and_what_stays_in_them() -> None:
    clock = FakeClock(0.0)
    ledger = AbandonLedger(windows_s=(100.0, 1000.0), clock=clock)
    for t, abandoned in [(10, False), (20, True), (50, False), (90, False), (120, False)]:
        clock.now = float(t)
        ledger.record(abandoned)
    clock.now = 125.0
    day = ledger.window(100.0)
    assert (day.live_answers, day.abandoned) == (3, 0)  # 20 s and 10 s left the window at 120/110
    month = ledger.window(1000.0)
    assert (month.live_answers, month.abandoned) == (5, 1)
    # Within the next 40 s the answer at 50 s leaves the short window too.
    assert ledger.window(100.0, horizon_s=40.0).kept == 2
    assert ledger.worst_share[100.0] == pytest.approx(1 / 2)  # at 20 s: 1 of 2
    assert ledger.worst_share[1000.0] == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="time order"):
        ledger.record(False, now=100.0)


def test_ledger_prunes_without_changing_counts() -> None:
    ledger = AbandonLedger(windows_s=(60.0,))
    for i in range(10_000):  # prunes every 4096 records
        ledger.record(i % 50 == 0, now=float(i))
    w = ledger.window(60.0, now=9999.0)
    assert w.live_answers == 60 and w.abandoned == 1
    assert ledger.live_answers == 10_000 and ledger.abandoned == 200


def test_normal_cdf_matches_erf() -> None:
    z = np.linspace(-6, 6, 241)
    exact = [0.5 * (1 + math.erf(x / math.sqrt(2))) for x in z]
    assert np.max(np.abs(normal_cdf(z) - np.array(exact))) < 2e-7
