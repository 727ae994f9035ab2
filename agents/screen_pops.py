"""Screen pops of nailed calls (and notices for the agent), held for the softphones to fetch over HTTP.

A rung call's screen pop reaches the agent's phone as the INVITE's ``X-Warmline-*`` headers. A
nailed call (agents.handover.nailed) makes no INVITE: its pop is published on the bus as a
``CallEvent`` of kind ``screen_pop`` (and ``screen_pop_end`` when the callee leaves), and home PCs
do not reach the bus. So the service follows those events (:func:`follow_screen_pops`, a worker of
every ``warmline up`` process) into a :class:`ScreenPopBox`, and the agent's phone asks for its own
with a long poll (``GET /api/agents/me/screen-pops``, agents.api). The same feed carries the agent's
notices (:data:`NOTICE_KINDS`): a cool-down's start and end, a caller's compliment.

The box is in memory: a pop is for the next seconds, not for the record. Each agent's last
:data:`KEEP_PER_AGENT` events are kept for :data:`KEEP_SECONDS`; numbers (``seq``) only grow
within a process, so a phone that asks ``after`` a number the box never gave (the service
restarted) gets what is held.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.bus import Bus
from core.messages import CallEvent

log = logging.getLogger(__name__)

POP_KINDS = frozenset({"screen_pop", "screen_pop_end"})
# Notices for the agent the same feed carries: a cool-down's start and end (agents.help.notices) and a
# caller's compliment (workforce.compliments). Their ``fields`` are the event's detail, as text.
NOTICE_KINDS = frozenset({"cooldown", "cooldown_end", "compliment"})
HELD_KINDS = POP_KINDS | NOTICE_KINDS
KEEP_PER_AGENT = 20
KEEP_SECONDS = 60.0


@dataclass(frozen=True)
class HeldPop:
    """One pop (or its end) for one agent: the ``X-Warmline-*`` fields, names without the prefix,
    values percent-encoded as in the SIP headers (masked number only)."""

    seq: int
    agent: str
    kind: str
    attempt: str
    campaign: str | None
    fields: dict[str, str]
    at: float  # the box's clock when it arrived


@dataclass
class ScreenPopBox:
    """The pops of one process's agents, newest last; :meth:`wait` is the long poll."""

    clock: Callable[[], float] = time.monotonic
    _held: dict[str, deque[HeldPop]] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last: int = 0
    _waiting: set[asyncio.Event] = field(default_factory=set)  # one per poll, made in its own loop

    @property
    def last(self) -> int:
        return self._last

    @property
    def polls(self) -> int:
        """Polls waiting for a pop now (not those woken and looking)."""
        return sum(not waiting.is_set() for waiting in self._waiting)

    def put(self, event: CallEvent) -> HeldPop | None:
        """Keep a bus event if it is a pop for an agent; wake the polls."""
        agent = event.detail.get("agent")
        if event.kind not in HELD_KINDS or not isinstance(agent, str) or not agent:
            return None
        raw = (event.detail.get("fields") or {}) if event.kind in POP_KINDS else event.detail
        fields = {str(k): str(v) for k, v in raw.items() if v is not None} if isinstance(raw, dict) else {}
        self._last = next(self._seq)
        pop = HeldPop(self._last, agent, event.kind, event.call_id, event.campaign, fields, self.clock())
        self._held.setdefault(agent, deque(maxlen=KEEP_PER_AGENT)).append(pop)
        for waiting in self._waiting:
            waiting.set()
        return pop

    def held(self, agent: str, after: int | None) -> list[HeldPop]:
        """The agent's pops newer than ``after``, none older than KEEP_SECONDS. A phone that
        starts (``after`` None, or a number this box never gave) gets the pops of the calls
        still going: a pop whose end is held is over."""
        oldest = self.clock() - KEEP_SECONDS
        pops = [p for p in self._held.get(agent, ()) if p.at >= oldest]
        if after is not None and after <= self._last:
            return [p for p in pops if p.seq > after]
        ended = {p.attempt for p in pops if p.kind == "screen_pop_end"}
        return [p for p in pops if p.kind == "screen_pop" and p.attempt not in ended]

    async def wait(self, agent: str, after: int | None, timeout: float) -> list[HeldPop]:  # noqa: ASYNC109
        """The agent's new pops, waiting up to ``timeout`` seconds for one (at once when a
        phone starts: it learns ``last`` to ask after)."""
        if after is None or after > self._last or (found := self.held(agent, after)):
            return self.held(agent, after)
        waiting = asyncio.Event()
        self._waiting.add(waiting)
        try:
            async with asyncio.timeout(timeout):
                while not found:
                    waiting.clear()
                    await waiting.wait()
                    found = self.held(agent, after)
        except TimeoutError:
            pass
        finally:
            self._waiting.discard(waiting)
        return found


PROCESS_POPS = ScreenPopBox()


async def follow_screen_pops(bus: Bus, box: ScreenPopBox = PROCESS_POPS) -> None:
    """Keep every nailed call's pop the bus carries until the service stops."""
    async with bus.subscribe(CallEvent.topic_template.format(call_id="+"), CallEvent) as calls:
        async for _path, event in calls:
            if event.kind in HELD_KINDS:
                box.put(event)
