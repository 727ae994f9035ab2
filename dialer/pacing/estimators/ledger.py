"""Live answers and the abandoned ones over rolling windows (24 h and 30 days by default).

Each live answer is recorded once, when its fate is known (an agent took it, or the grace ran out),
at that instant on the caller's monotonic clock, so records arrive in time order. `window()`
counts a window ending now in two binary searches; it also counts the answers that will still be
in the window `horizon_s` from now, which the pacer's hard cap budgets against (an answer that is
about to leave the window cannot pay for an abandon that will stay in it).

`worst_share` is the highest abandoned share any window reached at any record: what the
simulator reports as `worst_window_abandon`. The engine fills the same counts from the attempts
ledger in the database; this in-memory one serves the simulator and tests.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from dialer.pacing.model import DAY_S, MONTH_S, AbandonWindow

PRUNE_EVERY = 4096


class AbandonLedger:
    def __init__(
        self, windows_s: tuple[float, ...] = (DAY_S, MONTH_S), clock: Callable[[], float] | None = None
    ):
        if not windows_s or min(windows_s) <= 0:
            raise ValueError(f"windows must be positive seconds, got {windows_s}")
        self.windows_s = windows_s
        self.clock = clock
        self._times: list[float] = []
        self._abandoned_before: list[int] = [0]  # abandons among the first i records
        self.worst_share: dict[float, float] = dict.fromkeys(windows_s, 0.0)
        self.live_answers = 0
        self.abandoned = 0

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        if self.clock is None:
            raise ValueError("no time given and no clock injected")
        return self.clock()

    def record(self, abandoned: bool, now: float | None = None) -> None:
        at = self._now(now)
        if self._times and at < self._times[-1]:
            raise ValueError(f"ledger records must come in time order ({at} after {self._times[-1]})")
        self._times.append(at)
        self._abandoned_before.append(self._abandoned_before[-1] + (1 if abandoned else 0))
        self.live_answers += 1
        self.abandoned += int(abandoned)
        for w in self.windows_s:
            share = self.window(w, at).share
            if share > self.worst_share[w]:
                self.worst_share[w] = share
        if len(self._times) % PRUNE_EVERY == 0:
            self._prune(at)

    def window(self, window_s: float, now: float | None = None, horizon_s: float = 0.0) -> AbandonWindow:
        at = self._now(now)
        start = bisect_right(self._times, at - window_s)
        kept_from = bisect_right(self._times, at + horizon_s - window_s)
        end = len(self._times)
        return AbandonWindow(
            window_s=window_s,
            live_answers=end - start,
            abandoned=self._abandoned_before[end] - self._abandoned_before[start],
            live_answers_kept=end - max(start, kept_from),
        )

    def windows(self, now: float | None = None, horizon_s: float = 0.0) -> tuple[AbandonWindow, ...]:
        return tuple(self.window(w, now, horizon_s) for w in self.windows_s)

    def _prune(self, now: float) -> None:
        """Forget records older than the longest window (their counts can never matter again)."""
        drop = bisect_right(self._times, now - max(self.windows_s))
        if drop:
            del self._times[:drop]
            base = self._abandoned_before[drop]
            self._abandoned_before = [n - base for n in self._abandoned_before[drop:]]
