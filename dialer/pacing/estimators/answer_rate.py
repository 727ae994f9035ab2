"""How likely a dial is to reach a person, and how long it takes to find out.

`AnswerRate` is the share of dials that end in a live answer, with exponential forgetting: each
dial weighs `0.5 ** (1 / half_life)` times the one after it, so a list whose answer rate drifts
mid-shift (people coming home) is followed within a few hundred dials. A small prior keeps the
first dials from swinging it; `upper()` is a Wilson upper bound for the side where too high an
estimate is the safe one.

`ResolutionTimes` keeps the last `size` resolution times (dial to verdict), live and not live
apart, sorted, so "of the calls still ringing after a seconds, how many reach a person within the
next t seconds" is two binary searches.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import deque
from typing import Any

import numpy as np

from dialer.pacing.estimators.normal import Array

Bools = np.ndarray[Any, np.dtype[np.bool_]]


class AnswerRate:
    def __init__(self, half_life: float = 300.0, prior: float = 0.25, prior_weight: float = 10.0) -> None:
        if half_life <= 0 or not 0 <= prior <= 1 or prior_weight < 0:
            raise ValueError("half_life > 0, 0 <= prior <= 1 and prior_weight >= 0 are required")
        self.decay = 0.5 ** (1.0 / half_life)
        self._live = prior * prior_weight
        self._weight = prior_weight
        self.observed = 0

    def record(self, live: bool) -> None:
        self._live = self._live * self.decay + (1.0 if live else 0.0)
        self._weight = self._weight * self.decay + 1.0
        self.observed += 1

    @property
    def rate(self) -> float:
        return self._live / self._weight if self._weight else 0.0

    @property
    def weight(self) -> float:
        """The effective number of dials behind `rate`."""
        return self._weight

    def upper(self, z: float = 1.645) -> float:
        """Wilson score upper bound of the rate at `z` standard errors."""
        n, p = self._weight, self.rate
        if n <= 0:
            return 1.0
        centre = p + z * z / (2 * n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return min(1.0, (centre + spread) / (1 + z * z / n))


class ResolutionTimes:
    def __init__(self, size: int = 400) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size
        self._order: deque[tuple[float, bool]] = deque()
        self._live: list[float] = []
        self._other: list[float] = []
        self._arrays: tuple[Array, Array] | None = None

    def record(self, after_s: float, live: bool) -> None:
        self._order.append((after_s, live))
        insort(self._live if live else self._other, after_s)
        if len(self._order) > self.size:
            old, was_live = self._order.popleft()
            sample = self._live if was_live else self._other
            del sample[bisect_right(sample, old) - 1]
        self._arrays = None

    @property
    def live_count(self) -> int:
        return len(self._live)

    @property
    def count(self) -> int:
        return len(self._order)

    def live_cdf(self, t: float) -> float:
        return bisect_right(self._live, t) / len(self._live) if self._live else 0.0

    def other_cdf(self, t: float) -> float:
        return bisect_right(self._other, t) / len(self._other) if self._other else 0.0

    def live_quantiles(self, k: int) -> list[float]:
        """`k` representative live answer times: the midpoints of k equal-probability slices."""
        if not self._live:
            return []
        n = len(self._live)
        return [self._live[min(n - 1, int((i + 0.5) * n / k))] for i in range(k)]

    def live_within(self, age_s: float, horizon_s: float, p_live: float) -> float:
        """P(a call unresolved after `age_s` turns live within the next `horizon_s`), given a
        fresh dial is live with probability `p_live`."""
        g_age = self.live_cdf(age_s)
        alive = p_live * (1 - g_age) + (1 - p_live) * (1 - self.other_cdf(age_s))
        if alive <= 1e-9:
            return 0.0
        return min(1.0, p_live * (self.live_cdf(age_s + horizon_s) - g_age) / alive)

    def _sorted_arrays(self) -> tuple[Array, Array]:
        if self._arrays is None:
            self._arrays = (
                np.asarray(self._live, dtype=np.float64),
                np.asarray(self._other, dtype=np.float64),
            )
        return self._arrays

    def live_cdf_array(self, t: Array) -> Array:
        live, _ = self._sorted_arrays()
        if not len(live):
            return np.zeros_like(t, dtype=np.float64)
        return np.asarray(np.searchsorted(live, t, side="right") / len(live), dtype=np.float64)

    def live_within_array(self, ages: Array, horizons: Array, p_live: float) -> Array:
        """`live_within` over broadcast arrays of ages and horizons."""
        _, other = self._sorted_arrays()
        ages, horizons = np.broadcast_arrays(ages, horizons)
        g_age = self.live_cdf_array(ages)
        g_end = self.live_cdf_array(ages + horizons)
        o_age = np.searchsorted(other, ages, side="right") / len(other) if len(other) else np.zeros_like(ages)
        alive = p_live * (1 - g_age) + (1 - p_live) * (1 - o_age)
        within = p_live * (g_end - g_age) / np.maximum(alive, 1e-9)
        return np.asarray(np.where(alive > 1e-9, np.clip(within, 0.0, 1.0), 0.0), dtype=np.float64)


class AnswerSignals:
    """The last `size` dials' answer and verdict times, for calls the engine sees answered before
    AMD's verdict (the "answered, analysing" state).

    A ringing call that has not been answered after `a` seconds is less likely to turn live soon
    than the average unresolved call (the ones answered are the ones about to); one answered `b`
    seconds ago, with AMD still analysing, is live with P(a person | answered and no verdict for
    b seconds) -- about 6 times in 10 at the start of the analysis in the simulator's list. Both are
    Bayes over the sample: live dials and the others apart, weighted by the live rate `p_live`
    the pacer believes (its upper bound), so a drifting rate moves them as it moves the rest.
    """

    def __init__(self, size: int = 400) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self._kept: deque[tuple[float, float, bool, bool]] = deque(maxlen=size)
        self._arrays: dict[bool, tuple[Array, Array, Bools]] | None = None

    def record(self, after_s: float, live: bool, answered_after_s: float | None) -> None:
        """`after_s` dial to verdict (or end); `answered_after_s` dial to answer, None if never."""
        answered = answered_after_s is not None
        first = min(after_s, answered_after_s) if answered_after_s is not None else after_s
        self._kept.append((first, after_s, live, answered))
        self._arrays = None

    @property
    def answered_count(self) -> int:
        return sum(1 for k in self._kept if k[3])

    def _split(self) -> dict[bool, tuple[Array, Array, Bools]]:
        """live -> (first signal, verdict, answered) arrays; other -> the same."""
        if self._arrays is None:
            out = {}
            for live in (True, False):
                rows = [k for k in self._kept if k[2] is live]
                out[live] = (
                    np.asarray([r[0] for r in rows], dtype=np.float64),
                    np.asarray([r[1] for r in rows], dtype=np.float64),
                    np.asarray([r[3] for r in rows], dtype=bool),
                )
            self._arrays = out
        return self._arrays

    @staticmethod
    def _mean(mask: Bools) -> Array:
        n = mask.shape[-1]
        return np.asarray(mask.sum(axis=-1) / n if n else np.zeros(mask.shape[:-1]), dtype=np.float64)

    def ringing_live_within(self, ages: Array, horizons: Array, p_live: float) -> Array:
        """P(a call still unanswered `ages` seconds after the dial turns live within `horizons`)."""
        (lf, lv, _), (of, _, _) = self._split()[True], self._split()[False]
        ages, horizons = np.broadcast_arrays(np.asarray(ages, np.float64), np.asarray(horizons, np.float64))
        a, end = ages[..., None], (ages + horizons)[..., None]
        hit = p_live * self._mean((lf > a) & (lv <= end))
        alive = p_live * self._mean(lf > a) + (1 - p_live) * self._mean(of > a)
        return self._ratio(hit, alive)

    def analysing_live_within(self, since: Array, horizons: Array, p_live: float) -> Array:
        """P(a call answered `since` seconds ago, no verdict yet, is live within `horizons`)."""
        (lf, lv, la), (of, ov, oa) = self._split()[True], self._split()[False]
        since, horizons = np.broadcast_arrays(np.asarray(since, np.float64), np.asarray(horizons, np.float64))
        b, end = since[..., None], (since + horizons)[..., None]
        ld, od = lv - lf, ov - of
        hit = p_live * self._mean(la & (ld > b) & (ld <= end))
        alive = p_live * self._mean(la & (ld > b)) + (1 - p_live) * self._mean(oa & (od > b))
        return self._ratio(hit, alive)

    @staticmethod
    def _ratio(hit: Array, alive: Array) -> Array:
        within = hit / np.maximum(alive, 1e-9)
        return np.asarray(np.where(alive > 1e-9, np.clip(within, 0.0, 1.0), 0.0), dtype=np.float64)
