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

import numpy as np

from dialer.pacing.estimators.normal import Array


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
