"""QA sampling: reproducible, stratified, minimum and cap per agent, explainable; targeted rules."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from recordings.qa.sampling import (
    Candidate,
    Pick,
    SamplingError,
    SamplingParams,
    TargetRules,
    default_seed,
    draw_random,
    draw_targeted,
    parse_period,
)

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


def population() -> list[Candidate]:
    out = []
    n = 0
    # li: 40 calls on campaign 1, 20 on campaign 2; wang: 3 calls on campaign 1; zhao: 100 on 2
    for agent, campaign, count in (("li", 1, 40), ("li", 2, 20), ("wang", 1, 3), ("zhao", 2, 100)):
        for _ in range(count):
            n += 1
            out.append(
                Candidate(f"{n:08x}-0000-4000-8000-000000000000", agent, campaign, f"c{campaign}", 60.0)
            )
    return out


PARAMS = SamplingParams(rate=0.1, min_per_agent=2, max_per_agent=8, double_score_rate=0.0)


def ids(picks: list[Pick]) -> list[str]:
    return [p.recording_id for p in picks]


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    pop = population()
    a = draw_random(pop, PARAMS, seed=7)
    assert ids(a) == ids(draw_random(list(reversed(pop)), PARAMS, seed=7))  # input order does not matter
    assert ids(a) != ids(draw_random(pop, PARAMS, seed=8))


def test_strata_are_independent() -> None:
    pop = population()
    before = [p for p in draw_random(pop, PARAMS, 7) if p.agent == "li"]
    more = [*pop, Candidate("ffffffff-0000-4000-8000-000000000000", "zhao", 2, "c2", 60.0)]
    after = [p for p in draw_random(more, PARAMS, 7) if p.agent == "li"]
    assert ids(before) == ids(after)  # a new call of zhao's changes nothing of li's


def test_stratified_rate_minimum_and_cap() -> None:
    picks = draw_random(population(), PARAMS, seed=3)
    per_stratum = Counter((p.agent, p.campaign_id) for p in picks)
    assert per_stratum[("li", 1)] == 4 and per_stratum[("li", 2)] == 2  # 10 % of 40 and of 20
    assert per_stratum[("wang", 1)] == 2  # 10 % of 3 is 0.3: topped up to the minimum of 2
    assert sum(p.reason["basis"] == "minimum" for p in picks if p.agent == "wang") >= 1
    assert per_stratum[("zhao", 2)] == 8  # 10 % of 100 is 10: capped at 8
    li = [p for p in picks if p.agent == "li"]
    assert all(p.reason["basis"] == "rate" for p in li)
    r = li[0].reason
    assert r["stratum"] == "li × c1" and r["stratum_size"] == 40 and r["rate"] == 0.1 and 1 <= r["draw"] <= 40
    assert "draw" in li[0].reason_text and "li × c1" in li[0].reason_text


def test_fractional_expectation_is_unbiased() -> None:
    # 10 % of 5 calls: each stratum takes 0 or 1, and over many seeds about half take one.
    pop = [Candidate(f"{i:08x}-0000-4000-8000-000000000000", "a", 1, None, 60.0) for i in range(5)]
    params = SamplingParams(rate=0.1, min_per_agent=0, max_per_agent=10, double_score_rate=0)
    taken = [len(draw_random(pop, params, seed)) for seed in range(2000)]
    assert set(taken) <= {0, 1}
    assert 0.45 < sum(taken) / len(taken) < 0.55
    # and each call is equally likely
    counts = Counter(i for seed in range(4000) for i in ids(draw_random(pop, params, seed)))
    assert all(300 < c < 500 for c in counts.values()), counts


def test_minimum_is_spread_over_an_agents_strata() -> None:
    pop = [
        Candidate(f"{i:08x}-0000-4000-8000-00000000000{c}", "a", c, None, 60.0)
        for c in (1, 2)
        for i in range(3)
    ]
    params = SamplingParams(rate=0.01, min_per_agent=2, max_per_agent=10, double_score_rate=0)
    picks = draw_random(pop, params, 1)
    assert sorted(p.campaign_id or 0 for p in picks) == [1, 2]
    assert all(p.reason["basis"] == "minimum" and "minimum of 2" in p.reason_text for p in picks)


def test_double_scoring_share() -> None:
    params = PARAMS.model_copy(update={"double_score_rate": 0.25})
    picks = draw_random(population(), params, 11)
    doubles = [p for p in picks if p.reviewers_needed == 2]
    assert len(doubles) == round(0.25 * len(picks))
    assert ids(doubles) == ids([p for p in draw_random(population(), params, 11) if p.reviewers_needed == 2])


def test_targeted_rules() -> None:
    def call(n: int, **kw: Any) -> Candidate:
        return Candidate(f"{n:08d}-0000-4000-8000-000000000000", "li", 1, "welfare", **kw)

    calls = [
        call(1, duration_s=8.0),
        call(2, duration_s=90.0, longest_silence_s=14.2),
        call(3, duration_s=90.0, overtalk_s=9.5),
        call(4, duration_s=90.0, outcome="opted_out"),
        call(5, duration_s=90.0, escalated=True),
        call(6, duration_s=90.0, outcome="help"),
        call(7, duration_s=90.0, longest_silence_s=3, overtalk_s=1),
    ]
    picks = draw_targeted(calls, TargetRules())
    rules = {p.recording_id[:8]: [h["rule"] for h in p.reason["rules"]] for p in picks}
    assert rules == {
        "00000001": ["short_call"],
        "00000002": ["dead_air"],
        "00000003": ["overtalk"],
        "00000004": ["opt_out"],
        "00000005": ["welfare_escalation"],
        "00000006": ["welfare_escalation"],
    }
    assert all(p.kind == "targeted" for p in picks)
    assert "very short call: 8 s" in picks[0].reason_text
    assert draw_targeted(calls, TargetRules(short_call_s=None, dead_air_s=None, overtalk_s=None,
                                            opt_outs=False, welfare_escalations=False)) == []  # fmt: skip


def test_periods() -> None:
    p = parse_period("2026-W48", "Asia/Shanghai")
    assert p.label == "2026-W48"
    assert p.start == datetime(2026, 11, 22, 16, tzinfo=UTC)  # Monday 23 Nov 00:00 in Shanghai
    assert p.end == datetime(2026, 11, 29, 16, tzinfo=UTC)
    assert parse_period("2026-11-01..2026-11-07").label == "2026-11-01..2026-11-07"
    assert parse_period("2026-11-24").end == datetime(2026, 11, 25, tzinfo=UTC)
    for bad in ("2026-W54", "last week", "2026-11-07..2026-11-01"):
        with pytest.raises(SamplingError):
            parse_period(bad)
    assert default_seed("2026-W48") == default_seed("2026-W48") != default_seed("2026-W49")
