"""The dialer's hard limits: how many calls it may start now, whatever the pacer would like.

Three limits, the smallest wins: free channels (concurrent calls), calls per second (a token
bucket, so a burst after a pause is capped too) and, for agent campaigns, free agents with an
abandon-rate budget (too many answered calls with no agent to take them throttles to one per agent).
The pacer (`dialer.pacing.Pacer`) says how many calls the agents need; the engine starts the
smaller of that and these limits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


class TokenBucket:
    """`rate` tokens a second up to `burst`; starts full so a campaign starts at once."""

    def __init__(self, rate: float, burst: float | None = None, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"calls per second must be positive, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    @property
    def available(self) -> int:
        self._refill()
        return int(self._tokens + 1e-9)  # 0.4 s x 5/s is 1.9999999 in floating point

    def take(self, n: int = 1) -> bool:
        self._refill()
        if self._tokens + 1e-9 < n:
            return False
        self._tokens -= n
        return True

    def wait_time(self, n: int = 1) -> float:
        """Seconds until `n` tokens are there."""
        self._refill()
        return max(0.0, (n - self._tokens) / self.rate)


@dataclass
class AbandonBudget:
    """Abandoned share of answered calls over a sliding window, against a limit (e.g. 3%)."""

    limit: float = 0.03
    window: int = 200
    _answered: deque[bool] = field(default_factory=deque)  # True = abandoned

    def record(self, abandoned: bool) -> None:
        self._answered.append(abandoned)
        while len(self._answered) > self.window:
            self._answered.popleft()

    @property
    def rate(self) -> float:
        return sum(self._answered) / len(self._answered) if self._answered else 0.0

    @property
    def exceeded(self) -> bool:
        return self.rate > self.limit


@dataclass(frozen=True)
class Capacity:
    max_channels: int
    active_calls: int
    free_agents: int | None = None  # None: a broadcast campaign, no agents involved
    dial_ratio: float = 1.0  # calls per free agent when within the abandon budget


def calls_allowed(cap: Capacity, bucket: TokenBucket, abandon: AbandonBudget | None = None) -> int:
    """How many new calls may start now; tokens are not taken here (see `TokenBucket.take`)."""
    limit = max(0, cap.max_channels - cap.active_calls)
    limit = min(limit, bucket.available)
    if cap.free_agents is not None:
        ratio = 1.0 if abandon is not None and abandon.exceeded else cap.dial_ratio
        limit = min(limit, max(0, int(cap.free_agents * ratio)))
    return limit
