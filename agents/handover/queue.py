"""The calls waiting for an agent in this process, per skill, in the order they are served.

Outbound calls handed over by the dialer and inbound hotline callers share one :class:`SkillQueues`
per process, so a caller who has waited longer is served first whichever way they came in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass(order=True)
class _Waiting:
    priority: int  # negated, so higher priority sorts first
    seq: int
    channel_id: str = field(compare=False)


class SkillQueues:
    """First come, first served per skill; a higher ``priority`` goes ahead."""

    def __init__(self) -> None:
        self._queues: dict[str, list[_Waiting]] = {}
        self._seq = itertools.count()

    def join(self, skill: str | None, channel_id: str, priority: int = 0) -> None:
        queue = self._queues.setdefault(skill or "", [])
        queue.append(_Waiting(-priority, next(self._seq), channel_id))
        queue.sort()

    def leave(self, skill: str | None, channel_id: str) -> None:
        queue = self._queues.get(skill or "", [])
        queue[:] = [w for w in queue if w.channel_id != channel_id]

    def position(self, skill: str | None, channel_id: str) -> int:
        """1 for the call at the head of its queue; 0 when not queued."""
        for i, waiting in enumerate(self._queues.get(skill or "", [])):
            if waiting.channel_id == channel_id:
                return i + 1
        return 0

    def waiting(self, skill: str | None = None) -> int:
        if skill is None:
            return sum(len(q) for q in self._queues.values())
        return len(self._queues.get(skill, []))
