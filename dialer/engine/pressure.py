"""Back-pressure from ARI (docs/faults.md): when Asterisk answers slowly, start fewer calls.

Every ARI request of a node is timed (`instrument` wraps the client's `request`). The node keeps a
window: how many originates may be waiting for ARI's answer at once. A request slower than
`dialer_ari_slow` seconds halves the window (down to what is waiting now, at most once per slow
period); a timeout drops it to one; each originate answered faster than that widens it by one
again, up to the node's channels. The dialer claims no more contacts than the window leaves free, so nobody is
claimed for a call that cannot be placed in time, and the window is a probe that keeps one call
going to learn when ARI is fast again.

Figures (for the live page and `CampaignStats`): ARI's smoothed answer time, the window, how many
starts were held back, and whether the node is slow now.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from core.ari import AriClient, AriError, ParamValue

log = logging.getLogger(__name__)

SMOOTHING = 0.3  # weight of the newest answer time in the running average
HOLD_QUIET_S = 30.0
"""Calls stay "held back" (the fault board, the supervisors' alert) until the narrowed window has
refused no start for this long, so one slow minute raises one alert, not one per refusal."""


class Pressure:
    """One node's ARI answer time and the originate window it allows."""

    def __init__(
        self,
        *,
        slow: float = 2.0,
        timeout: float = 10.0,
        max_window: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slow = slow
        self.timeout = timeout
        self.max_window = max(1, max_window)
        self.clock = clock
        self.window = float(self.max_window)
        self.average: float | None = None  # smoothed answer time (s)
        self.waiting = 0  # requests sent, not answered yet
        self.originating = 0  # originates sent, not answered yet
        self.held_back = 0  # starts the window refused, in all
        self.cuts = 0
        self._last_cut = -math.inf
        self._last_refused = -math.inf  # when the narrowed window last refused a start
        self._last_answer = -math.inf  # when ARI last answered (or timed out)

    # ---------------------------------------------------------------- what ARI did

    def sent(self, *, originate: bool) -> None:
        self.waiting += 1
        if originate:
            self.originating += 1

    def answered(self, seconds: float, *, originate: bool, timed_out: bool = False) -> None:
        self.waiting = max(0, self.waiting - 1)
        if originate:
            self.originating = max(0, self.originating - 1)
        self.average = (
            seconds if self.average is None else SMOOTHING * seconds + (1 - SMOOTHING) * self.average
        )
        now = self.clock()
        self._last_answer = now
        if timed_out:
            self._cut(1.0, now, "timeout")
        elif seconds >= self.slow:
            if now - self._last_cut >= self.slow:
                self._cut(max(1.0, min(self.window, self.originating + self.waiting + 1) / 2), now, "slow")
        elif originate:  # only a fast originate says that calls can be placed fast again
            self.window = min(float(self.max_window), self.window + 1)

    def _cut(self, window: float, now: float, why: str) -> None:
        if window < self.window:
            log.warning(
                "ARI %s (%.1f s average): at most %d originates at once", why, self.average or 0, int(window)
            )
            self.window = window
            self.cuts += 1
        self._last_cut = now

    # ---------------------------------------------------------------- what the dialer may do

    @property
    def is_slow(self) -> bool:
        return self.window < self.max_window and (self.average or 0.0) >= self.slow / 2

    def allowance(self, wanted: int) -> int:
        """How many of `wanted` new calls may start now; the rest are held back (counted)."""
        free = max(0, int(self.window) - self.originating)
        allowed = min(wanted, free)
        if wanted > allowed:
            self.held_back += wanted - allowed
            if self.window < self.max_window:  # refused by a slow ARI, not by the node's channels
                self._last_refused = self.clock()
        return max(0, allowed)

    @property
    def holding_back(self) -> bool:
        """Calls are being held back now: the window, narrowed by a slow ARI, refused a start within
        the last `HOLD_QUIET_S` seconds."""
        return self.window < self.max_window and self.clock() - self._last_refused < HOLD_QUIET_S

    def fault(self) -> dict[str, Any]:
        """The node's line on the fault board (dialer.engine.faults): slow or holding back is degraded."""
        holding = self.holding_back
        # Slow as last measured, while that is recent or a request still waits (an idle dialer
        # sends nothing that would say ARI is fast again: it is not shown degraded for ever).
        slow = self.is_slow and (self.waiting > 0 or self.clock() - self._last_answer < HOLD_QUIET_S)
        return {
            "degraded": slow or holding,
            "slow": slow,
            "holding_back": holding,
            **self.figures(),
        }

    def figures(self) -> dict[str, int]:
        return {
            "ari_ms": round((self.average or 0.0) * 1000),
            "ari_window": int(self.window),
            "ari_held_back": self.held_back,
            "ari_slow": int(self.is_slow),
        }


def instrument(ari: AriClient, pressure: Pressure, clock: Callable[[], float] | None = None) -> AriClient:
    """Time every request of `ari` into `pressure` (the client's own methods all go through
    `request`, the real client's and the fake's alike)."""
    inner = ari.request
    now = clock or pressure.clock

    async def request(
        method: str, path: str, *, body: Any = None, **params: ParamValue
    ) -> Any:  # same signature as AriClient.request
        originate = method == "POST" and path == "/channels"
        pressure.sent(originate=originate)
        started = now()
        timed_out = False
        try:
            return await inner(method, path, body=body, **params)
        except AriError as exc:
            timed_out = exc.status == 0 and "Timeout" in exc.message
            raise
        finally:
            pressure.answered(now() - started, originate=originate, timed_out=timed_out)

    ari.request = request  # type: ignore[method-assign]
    return ari
