"""Pacing with a controllable clock: token bucket, channel and agent limits, abandon budget."""

from __future__ import annotations

import pytest

from dialer.outcomes import CallFacts, Outcome, classify, is_final
from dialer.pacing import AbandonBudget, Capacity, TokenBucket, calls_allowed


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_rate_and_caps_bursts() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=5, clock=clock)
    assert sum(bucket.take() for _ in range(10)) == 5
    clock.now += 0.4
    assert bucket.available == 2
    assert bucket.wait_time(3) == pytest.approx(0.2)
    clock.now += 3600  # a long pause does not allow more than the burst
    assert bucket.available == 5


def test_sustained_rate_matches_setting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=7.5, clock=clock)
    started = 0
    for _ in range(10_000):  # 100 s in 10 ms steps
        clock.now += 0.01
        while bucket.take():
            started += 1
    assert started == pytest.approx(7.5 * 100, abs=bucket.burst + 1)


def test_refuses_nonsense_rate() -> None:
    with pytest.raises(ValueError, match="calls per second"):
        TokenBucket(rate=0)


def test_limits_take_the_smallest() -> None:
    bucket = TokenBucket(rate=100, clock=FakeClock())
    assert calls_allowed(Capacity(max_channels=30, active_calls=25), bucket) == 5
    assert (
        calls_allowed(Capacity(max_channels=30, active_calls=0, free_agents=4, dial_ratio=1.5), bucket) == 6
    )
    over = AbandonBudget(limit=0.03)
    for abandoned in [True] * 5 + [False] * 45:
        over.record(abandoned)
    assert over.exceeded
    assert calls_allowed(Capacity(30, 0, free_agents=4, dial_ratio=1.5), bucket, over) == 4


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        (CallFacts(answered=False, hangup_cause=17), Outcome.busy),
        (CallFacts(answered=False, hangup_cause=34), Outcome.failed),
        (CallFacts(answered=False, hangup_cause=19), Outcome.no_answer),
        (CallFacts(answered=False, hangup_cause=None), Outcome.no_answer),
        (CallFacts(answered=True, amd_status="MACHINE"), Outcome.machine),
        (CallFacts(answered=True, amd_status="MACHINE", message_left=True), Outcome.machine_message_left),
        (CallFacts(answered=True, amd_status="HUMAN", flow_outcome="confirmed"), Outcome.confirmed),
        (CallFacts(answered=True, amd_status="HUMAN", flow_outcome="opted_out"), Outcome.opted_out),
        (CallFacts(answered=True, amd_status="HUMAN"), Outcome.hangup_early),
    ],
)
def test_classify(facts: CallFacts, outcome: Outcome) -> None:
    assert classify(facts) is outcome


def test_finality() -> None:
    assert is_final(Outcome.confirmed) and is_final(Outcome.opted_out)
    assert not is_final(Outcome.busy) and not is_final(Outcome.machine)
