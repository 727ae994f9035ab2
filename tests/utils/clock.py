"""Clocks for tests: one a test moves by hand (what the service reads from `create_app(clock=...)`),
and one that runs faster than the wall clock (a dialer's retry delays pass in seconds while
Asterisk's calls take their real time)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from core.db import utcnow


class SettableClock:
    """Starts at the real time (tokens issued by the real clock stay valid), then moves only when
    the test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or utcnow()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


class ScaledClock:
    """UTC that runs `scale` times faster than the wall clock, from now."""

    def __init__(self, scale: float) -> None:
        self.t0 = utcnow()
        self.m0 = time.monotonic()
        self.scale = scale

    def __call__(self) -> datetime:
        return self.t0 + timedelta(seconds=(time.monotonic() - self.m0) * self.scale)
