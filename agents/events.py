"""The agents' side of the bus: keep the ledger from the states the softphones publish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiomqtt
from sqlalchemy.exc import SQLAlchemyError

from agents.quality import record_quality
from agents.states import current_state, record_state
from core.bus import Backoff, Bus
from core.db import Database, utcnow
from core.messages import AgentState, CallQuality

# A softphone's last will is composed when it connects, so its `since` is that moment, not when
# it vanished; the broker publishes it when the connection is lost, i.e. about when we receive it.
LAST_WILL_REASON = "connection_lost"

log = logging.getLogger(__name__)
RESUBSCRIBE = Backoff(initial=0.5, maximum=30.0)


def keep_state(db: Database, state: AgentState) -> bool:
    """Write one published state into the ledger; False when there was nothing new to write."""
    with db.session() as session:
        if state.reason == LAST_WILL_REASON and state.state == "logged_out":
            latest = current_state(session, state.agent)
            if latest is None or latest.state == "logged_out":
                return False  # a retained will seen again after our own reconnect
            state = state.model_copy(update={"since": utcnow()})
        return record_state(session, state)


def keep_quality(db: Database, report: CallQuality) -> None:
    with db.session() as session:
        record_quality(session, report)


async def record_agent_states(
    bus: Bus,
    db: Database,
    *,
    backoff: Backoff = RESUBSCRIBE,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Runs for the life of the service; retained states re-delivered after a reconnect are no-ops.
    The database work runs in a thread. An error (the database away, the subscription broken) is
    logged and the states are subscribed to again after a backoff: the broker re-delivers every
    agent's retained state, so what could not be written is written then (docs/faults.md)."""
    failures = 0
    while not stop():
        try:
            async with bus.subscribe(AgentState.pattern(), AgentState) as states:
                async for _path, state in states:
                    if await asyncio.to_thread(keep_state, db, state):
                        log.info("agent %s is %s", state.agent, state.state)
                    failures = 0
            log.warning("agent states: the subscription ended; subscribing again")
        except (SQLAlchemyError, aiomqtt.MqttError, OSError, RuntimeError, ValueError) as exc:
            log.warning("agent states not kept (%s: %s); subscribing again", type(exc).__name__, exc)
        delay = backoff.delay(failures)
        failures += 1
        await sleep(delay)


async def record_call_quality(bus: Bus, db: Database) -> None:
    """Softphones that reach the bus publish their call quality there; keep it for supervisors."""
    async with bus.subscribe(CallQuality.pattern(), CallQuality) as reports:
        async for _path, report in reports:
            try:
                await asyncio.to_thread(keep_quality, db, report)
            except SQLAlchemyError:
                log.exception("call quality of %s not kept", report.call_ref)
