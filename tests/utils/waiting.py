"""Wait on a condition, not on the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109 - a bound on a poll, not a cancellation scope we hand out
    *,
    interval: float = 0.01,
    max_interval: float = 0.1,
    what: str = "",
) -> None:
    """Return as soon as `predicate()` is true; fail the test if it is still false after `timeout`.

    The timeout is a safety net for a broken test, never part of what a test proves: a test that
    passes must pass however slow the machine is, so choose it generously.

    Polls every `interval` at first, then less often (x1.5 a poll, up to `max_interval`): a
    condition that comes quickly is seen at once, and a minute's wait on a lab call does not run
    a database query or an HTTP request a hundred times a second on machines whose two cores the
    suite already saturates.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = interval
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s{': ' + what if what else ''}")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, max(interval, max_interval))
