"""`warmline up` stops even when one of its workers does not: `warmline.app.stop_workers` waits a
bounded time for the cancelled workers and names the one left (fresh run 5 hung in a TestClient's
shutdown: the compliments worker had lost its cancellation inside Python 3.11's `wait_for`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.fakes.clock import run_virtual
from warmline.app import WORKERS_STOP_S, stop_workers


def test_a_worker_that_loses_its_cancellation_does_not_hold_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stubborn() -> None:
        lost = 0
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                lost += 1
                if lost > 1:  # the test's own clean-up, below
                    raise

    async def polite() -> None:
        await asyncio.sleep(3600)

    async def main() -> tuple[float, list[str], bool]:
        loop = asyncio.get_running_loop()
        tasks = [
            asyncio.create_task(stubborn(), name="stubborn"),
            asyncio.create_task(polite(), name="polite"),
        ]
        await asyncio.sleep(0)
        started = loop.time()
        await stop_workers(tasks)
        took = loop.time() - started
        left = [t.get_name() for t in tasks if not t.done()]
        polite_cancelled = tasks[1].cancelled()
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return took, left, polite_cancelled

    with caplog.at_level(logging.ERROR, logger="warmline.app"):
        took, left, polite_cancelled = run_virtual(main())
    assert took == pytest.approx(WORKERS_STOP_S, abs=0.01)
    assert left == ["stubborn"] and polite_cancelled
    assert "worker stubborn did not stop" in caplog.text


def test_workers_that_stop_are_not_waited_for() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(asyncio.sleep(3600), name=f"w{i}") for i in range(3)]
        started = loop.time()
        await stop_workers(tasks)
        await stop_workers([])
        return loop.time() - started

    assert run_virtual(main()) == 0
