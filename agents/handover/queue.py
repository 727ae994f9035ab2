"""The calls waiting for an agent in this process, per skill, in the order they are served.

Outbound calls handed over by the dialer and inbound hotline callers share one :class:`SkillQueues`
per process, so a caller who has waited longer is served first whichever way they came in.

Each waiting call keeps what it asks of its agent (its :class:`~agents.routing.Need`: skill, line,
language). An agent goes to the longest-waiting call they can take: a call further back may take
an agent only if none of the calls ahead of it could (:meth:`SkillQueues.ahead`), so a caller on
a line only some agents serve does not hold up the callers behind them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from agents.routing import Need


@dataclass(order=True)
class _Waiting:
    priority: int  # negated, so higher priority sorts first
    seq: int
    channel_id: str = field(compare=False)
    need: Need = field(default_factory=Need, compare=False)


class SkillQueues:
    """First come, first served per skill; a higher ``priority`` goes ahead."""

    def __init__(self) -> None:
        self._queues: dict[str, list[_Waiting]] = {}
        self._seq = itertools.count()

    def join(self, skill: str | None, channel_id: str, priority: int = 0, need: Need | None = None) -> None:
        queue = self._queues.setdefault(skill or "", [])
        queue.append(_Waiting(-priority, next(self._seq), channel_id, need or Need(skill)))
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

    def ahead(self, skill: str | None, channel_id: str) -> list[Need]:
        """What the calls ahead of this one ask for, first in line first."""
        needs: list[Need] = []
        for waiting in self._queues.get(skill or "", []):
            if waiting.channel_id == channel_id:
                return needs
            needs.append(waiting.need)
        return []

    def inbound_waiting(self, skill: str | None = None) -> int:
        """Inbound callers (their need names a line) waiting for an agent with ``skill`` -- or for
        any agent -- in any queue: the callers a blended agent of that skill is kept for."""
        wanted = {None, "", "any", skill} if skill else None
        return sum(
            1
            for queue in self._queues.values()
            for w in queue
            if w.need.line and (wanted is None or w.need.skill in wanted)
        )

    def inbound_needs(self) -> list[Need]:
        """What every inbound caller waiting (in any queue) asks for, longest waiting first."""
        waiting = sorted((w for q in self._queues.values() for w in q if w.need.line), key=lambda w: w.seq)
        return [w.need for w in waiting]

    def waiting(self, skill: str | None = None) -> int:
        if skill is None:
            return sum(len(q) for q in self._queues.values())
        return len(self._queues.get(skill, []))
