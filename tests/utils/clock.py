"""A wall clock a test moves by hand, for what the service reads from `create_app(clock=...)`."""

from __future__ import annotations

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
