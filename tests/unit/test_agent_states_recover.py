"""The agent-state recorder survives errors (docs/faults.md): a database error or a broken
subscription is logged, and the states are subscribed to again after a backoff -- the broker
re-delivers every agent's retained state, so the state that could not be written is kept then.
SQLite and PostgreSQL; a bus in memory that re-delivers retained states like the broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
from sqlalchemy.exc import OperationalError

from agents import events
from agents.events import record_agent_states
from agents.states import current_state
from core.bus import Backoff
from core.db import Database
from core.messages import AgentState
from tests.fakes.clock import run_virtual
from tests.utils import until


class RetainedBus:
    """Each subscription first gets the retained states, then what is published; `drop()` makes
    the current subscriptions fail mid-stream, like a lost broker connection."""

    def __init__(self) -> None:
        self.retained: dict[str, AgentState] = {}
        self.queues: list[asyncio.Queue[AgentState | Exception]] = []
        self.subscriptions = 0

    def publish(self, state: AgentState) -> None:
        self.retained[state.agent] = state
        for q in self.queues:
            q.put_nowait(state)

    @asynccontextmanager
    async def _sub(self) -> AsyncIterator[AsyncIterator[tuple[str, AgentState]]]:
        self.subscriptions += 1
        queue: asyncio.Queue[AgentState | Exception] = asyncio.Queue()
        for state in self.retained.values():
            queue.put_nowait(state)
        self.queues.append(queue)

        async def items() -> AsyncIterator[tuple[str, AgentState]]:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                yield f"agents/{item.agent}/state", item

        try:
            yield items()
        finally:
            self.queues.remove(queue)

    def drop(self) -> None:
        for q in self.queues:
            q.put_nowait(aiomqtt.MqttError("connection lost"))

    def subscribe(self, pattern: str, model: Any) -> Any:
        return self._sub()


def state(agent: str, what: str, minute: int) -> AgentState:
    return AgentState(agent=agent, state=what, since=datetime(2026, 3, 2, 2, minute, tzinfo=UTC))


def latest(db: Database, agent: str) -> str | None:
    with db.session() as session:
        found = current_state(session, agent)
        return found.state if found is not None else None


def test_a_database_error_then_a_dropped_subscription_are_survived(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_keep = events.keep_state
    failing = {"n": 1}

    def keep(database: Database, st: AgentState) -> bool:
        if failing["n"]:
            failing["n"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real_keep(database, st)

    monkeypatch.setattr(events, "keep_state", keep)
    delays: list[float] = []

    async def main() -> int:
        bus = RetainedBus()
        stopping = False

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            await asyncio.sleep(seconds)

        task = asyncio.create_task(
            record_agent_states(
                bus,  # type: ignore[arg-type]
                db,
                backoff=Backoff(initial=1.0, maximum=8.0),
                sleep=sleep,
                stop=lambda: stopping,
            )
        )
        bus.publish(state("mei", "available", 1))  # the database fails on it
        await until(lambda: latest(db, "mei") == "available", 60, what="kept after resubscribing")
        subs = bus.subscriptions
        bus.drop()
        await until(lambda: bus.subscriptions > subs, 60, what="subscribed again after the drop")
        bus.publish(state("mei", "on_call", 2))
        await until(lambda: latest(db, "mei") == "on_call", 60)
        bus.publish(state("mei", "break", 3))
        await until(lambda: latest(db, "mei") == "break", 60, what="recording again after the drop")
        stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return bus.subscriptions

    subscriptions = run_virtual(main())
    assert subscriptions >= 2, "subscribed again after the error"
    assert delays and all(0 < d <= 8.0 for d in delays), "with a backoff"
