"""An asyncio event loop on virtual time: a whole call, with its ring, AMD, prompts and timeouts,
runs in milliseconds and in the same order on every machine.

Time stands still while anything can run; when every task waits, the clock jumps to the next
timer. Work handed to threads (`asyncio.to_thread`: the dialer's database work) is real work, so
the clock never jumps while a thread is busy: a slow database delays the run, never reorders it.
Sockets still work (their readiness is polled before every jump), but nothing here waits for a
reply from a real server on a timer -- the clock would run out before the reply came.

    from tests.fakes.clock import run_virtual
    result = run_virtual(scenario())
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

START = 1_000.0  # loop seconds at start; not 0, so "no deadline" and "deadline 0" never look alike
STUCK_AFTER = 60.0  # real seconds with nothing scheduled, no thread busy and no I/O: a hung test


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        loop = self.loop
        if ready or timeout == 0 or loop is None:
            return ready
        if loop.threads_busy:
            return super().select(0.05)  # a thread's result wakes us at once (the loop's self-pipe)
        if timeout is None:
            ready = super().select(STUCK_AFTER)
            if not ready:
                raise RuntimeError("virtual-time loop stuck: nothing scheduled, no thread busy, no I/O")
            return ready
        loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """`time()` is virtual: it moves only when the loop would otherwise sleep."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = START
        self._busy = 0
        self._busy_lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    @property
    def threads_busy(self) -> bool:
        return self._busy > 0

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        with self._busy_lock:
            self._busy += 1

        def done(_: asyncio.Future[T]) -> None:
            with self._busy_lock:
                self._busy -= 1

        future.add_done_callback(done)
        return future


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a VirtualTimeLoop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
