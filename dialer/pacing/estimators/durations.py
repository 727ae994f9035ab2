"""Talk and wrap-up times so far, and how soon a busy agent will be free.

Two views of the same observations, both forgetting the old ones:

- a lognormal fit (call-centre service times are close to one: Brown et al. 2005): exponentially
  weighted moments of log(duration), with a prior (mean, coefficient of variation) that counts as
  `prior_weight` observations so the first calls of a campaign do not swing it;
- the last `sample_size` durations themselves, sorted: the empirical distribution, which follows
  any shape (talk times are a mixture: conversations, and the short calls where an agent hears an
  answering machine that AMD let through).

`done_within(elapsed, t)` is P(the duration ends within t more seconds | it has lasted `elapsed`):
from the sample while at least `min_tail` sampled durations are longer than `elapsed`, from the
lognormal beyond that (the sample says nothing about a call longer than nearly all of it).
`done_within_array` is the same over numpy arrays, for the pacer's per-agent, per-horizon grid.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import deque
from statistics import NormalDist

import numpy as np

from dialer.pacing.estimators.normal import Array, normal_cdf

SQRT2 = math.sqrt(2.0)
STANDARD = NormalDist()


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this mean and coefficient of variation."""
    if mean <= 0 or cv < 0:
        raise ValueError(f"mean must be positive and cv not negative, got {mean}, {cv}")
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


class Durations:
    def __init__(
        self,
        prior_mean: float,
        prior_cv: float = 1.0,
        prior_weight: float = 5.0,
        half_life: float = 200.0,
        sample_size: int = 300,
        min_tail: int = 10,
        floor_s: float = 0.5,
    ) -> None:
        mu, sigma = lognormal_params(prior_mean, prior_cv)
        self.decay = 0.5 ** (1.0 / half_life)
        self.floor_s = floor_s
        self.sample_size = sample_size
        self.min_tail = min_tail
        self._w = prior_weight
        self._sum = mu * prior_weight
        self._sum2 = (sigma * sigma + mu * mu) * prior_weight
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._array: Array | None = None
        self.observed = 0
        self._refresh()

    def record(self, duration_s: float) -> None:
        d = max(self.floor_s, duration_s)
        x = math.log(d)
        self._w = self._w * self.decay + 1.0
        self._sum = self._sum * self.decay + x
        self._sum2 = self._sum2 * self.decay + x * x
        self.observed += 1
        self._order.append(d)
        insort(self._sorted, d)
        if len(self._order) > self.sample_size:
            old = self._order.popleft()
            del self._sorted[bisect_right(self._sorted, old) - 1]
        self._array = None
        self._refresh()

    def _refresh(self) -> None:
        self.mu = self._sum / self._w
        self.sigma = math.sqrt(max(1e-6, self._sum2 / self._w - self.mu * self.mu))

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma * self.sigma / 2)

    @property
    def sample(self) -> Array:
        if self._array is None:
            self._array = np.asarray(self._sorted, dtype=np.float64)
        return self._array

    def cdf(self, t: float) -> float:
        """The lognormal fit's CDF."""
        if t <= 0:
            return 0.0
        return 0.5 * (1.0 + math.erf((math.log(t) - self.mu) / (self.sigma * SQRT2)))

    def quantile(self, q: float) -> float:
        """From the sample when there is one, else from the fit."""
        q = min(max(q, 1e-9), 1 - 1e-9)
        if self._sorted:
            return self._sorted[min(len(self._sorted) - 1, int(q * len(self._sorted)))]
        return math.exp(self.mu + self.sigma * STANDARD.inv_cdf(q))

    def done_within(self, elapsed_s: float, t: float) -> float:
        """P(ends within `t` more seconds | lasted `elapsed_s` already)."""
        out = self.done_within_array(np.array([elapsed_s]), np.array([t]))
        return float(out[0])

    def done_within_array(self, elapsed: Array, t: Array) -> Array:
        elapsed, t = np.broadcast_arrays(
            np.asarray(elapsed, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        end = elapsed + np.maximum(t, 0.0)
        sample = self.sample
        n = len(sample)
        if n:
            started = np.searchsorted(sample, elapsed, side="right")
            longer = n - started
            chosen = (np.searchsorted(sample, end, side="right") - started) / np.maximum(longer, 1)
            thin = longer < self.min_tail
            if thin.any():  # the fit only where the sample has too few longer durations
                chosen = np.where(thin, self._fitted(elapsed, end), chosen)
        else:
            chosen = self._fitted(elapsed, end)
        return np.asarray(np.where(t > 0, np.clip(chosen, 0.0, 1.0), 0.0), dtype=np.float64)

    def _fitted(self, elapsed: Array, end: Array) -> Array:
        def cdf(x: Array) -> Array:
            z = (np.log(np.maximum(x, 1e-9)) - self.mu) / self.sigma
            return np.where(x > 0, normal_cdf(z), 0.0)

        before = cdf(elapsed)
        survive = 1.0 - before
        done = (cdf(end) - before) / np.maximum(survive, 1e-12)
        return np.asarray(np.where(survive > 1e-12, np.clip(done, 0.0, 1.0), 1.0), dtype=np.float64)
