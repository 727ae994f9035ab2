"""Wake this process's dialer workers: something their pass serves was committed here.

A worker's pass sleeps up to a second when nothing is due (dialer.engine.runtime, issue 13
Round 8); an agent's request for a call or a campaign started in this process should not wait
that long. `wake()` is called after the commit, from any thread; each worker listening turns it
into a wake of its own loop (it passes a thread-safe callback). Another process's changes are
seen at the worker's next once-a-second read, as before.
"""

from __future__ import annotations

from collections.abc import Callable

_listeners: set[Callable[[], None]] = set()


def listen(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` at every `wake()` until the returned function is called."""
    _listeners.add(callback)
    return lambda: _listeners.discard(callback)


def wake() -> None:
    """A change a dialer pass acts on was committed in this process."""
    for callback in list(_listeners):
        callback()
