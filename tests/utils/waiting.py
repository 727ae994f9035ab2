"""Wait on a condition, not on the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109 - a bound on a poll, not a cancellation scope we hand out
    *,
    interval: float = 0.01,
    what: str = "",
) -> None:
    """Return as soon as `predicate()` is true; fail the test if it is still false after `timeout`.

    The timeout is a safety net for a broken test, never part of what a test proves: a test that
    passes must pass however slow the machine is, so choose it generously.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s{': ' + what if what else ''}")
        await asyncio.sleep(interval)
