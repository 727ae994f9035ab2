"""Conversation figures from the two sides' speech segments: plain interval arithmetic.

Kept apart from the audio so that the same code computes the figures from detected speech and from
the ground-truth labels the tests make; the tests' error is then the detector's error alone.

Segments are sorted, non-overlapping `(start, end)` pairs in seconds.

Definitions (they are also in docs/analytics.md):

- **overtalk**: both sides speak at once; stretches shorter than `min_overtalk_s` are not counted
  (a backchannel such as "嗯" or "okay" under the other side's talk, or two turns that touch at a
  hand-over, is not an interruption);
- **silence (dead air)**: neither side speaks, between the first and the last speech of the call;
  the stretches before the first and after the last speech are reported apart (`leading`,
  `trailing`). A call with no speech at all is dead air from end to end;
- **monologue**: one side holding the floor: its segments chained while each pause is at most
  `monologue_pause_s` and the other side does not speak a turn in the pause (speech shorter than
  `backchannel_s`, such as "嗯" or "right", does not count; talking over the side does not end its
  monologue — that is overtalk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Segment = tuple[float, float]


@dataclass(frozen=True)
class TimelineSettings:
    min_overtalk_s: float = 0.5
    monologue_pause_s: float = 2.0
    backchannel_s: float = 1.0


@dataclass(frozen=True)
class Figures:
    talk_agent_s: float
    talk_customer_s: float
    speech_s: float
    silence_s: float
    silence_count: int
    longest_silence_s: float
    leading_silence_s: float
    trailing_silence_s: float
    overtalk_s: float
    overtalk_count: int
    overtalk: list[Segment]
    longest_monologue_agent_s: float
    longest_monologue_customer_s: float


def total(segments: Sequence[Segment]) -> float:
    return sum(e - s for s, e in segments)


def clip(segments: Sequence[Segment], lo: float, hi: float) -> list[Segment]:
    """The parts of `segments` inside [lo, hi]."""
    return [(max(s, lo), min(e, hi)) for s, e in segments if min(e, hi) > max(s, lo)]


def intersect(a: Sequence[Segment], b: Sequence[Segment]) -> list[Segment]:
    out: list[Segment] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def union(a: Sequence[Segment], b: Sequence[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for s, e in sorted([*a, *b]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def gaps(segments: Sequence[Segment]) -> list[Segment]:
    """The stretches between consecutive segments."""
    return [
        (segments[k][1], segments[k + 1][0])
        for k in range(len(segments) - 1)
        if segments[k + 1][0] > segments[k][1]
    ]


def longest_monologue(own: Sequence[Segment], other: Sequence[Segment], settings: TimelineSettings) -> float:
    turns = [seg for seg in other if seg[1] - seg[0] >= settings.backchannel_s]
    best = 0.0
    start: float | None = None
    end = 0.0
    k = 0  # the first of the other side's turns that ends after `end`
    for s, e in own:
        while k < len(turns) and turns[k][1] <= end:
            k += 1
        interrupted = k < len(turns) and turns[k][0] < s  # the other side spoke in the pause
        if start is None or s - end > settings.monologue_pause_s or interrupted:
            start = s
        end = e
        best = max(best, end - start)
    return best


def figures(
    agent: Sequence[Segment], customer: Sequence[Segment], duration_s: float, settings: TimelineSettings
) -> Figures:
    anyone = union(agent, customer)
    both = [seg for seg in intersect(agent, customer) if seg[1] - seg[0] >= settings.min_overtalk_s - 1e-9]
    if anyone:
        dead = gaps(anyone)
        leading, trailing = anyone[0][0], max(0.0, duration_s - anyone[-1][1])
    else:
        dead = [(0.0, duration_s)] if duration_s > 0 else []
        leading = trailing = 0.0
    return Figures(
        talk_agent_s=total(agent),
        talk_customer_s=total(customer),
        speech_s=total(anyone),
        silence_s=total(dead),
        silence_count=len(dead),
        longest_silence_s=max((e - s for s, e in dead), default=0.0),
        leading_silence_s=leading,
        trailing_silence_s=trailing,
        overtalk_s=total(both),
        overtalk_count=len(both),
        overtalk=both,
        longest_monologue_agent_s=longest_monologue(agent, customer, settings),
        longest_monologue_customer_s=longest_monologue(customer, agent, settings),
    )
