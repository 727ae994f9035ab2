"""The agents' side of the bus: keep the ledger from the states the softphones publish."""

from __future__ import annotations

import logging

from agents.quality import record_quality
from agents.states import current_state, record_state
from core.bus import Bus
from core.db import Database, utcnow
from core.messages import AgentState, CallQuality

# A softphone's last will is composed when it connects, so its `since` is that moment, not when
# it vanished; the broker publishes it when the connection is lost, i.e. about when we receive it.
LAST_WILL_REASON = "connection_lost"

log = logging.getLogger(__name__)


async def record_agent_states(bus: Bus, db: Database) -> None:
    """Runs for the life of the service; retained states re-delivered after a reconnect are no-ops."""
    async with bus.subscribe(AgentState.pattern(), AgentState) as states:
        async for _path, state in states:
            with db.session() as session:
                if state.reason == LAST_WILL_REASON and state.state == "logged_out":
                    latest = current_state(session, state.agent)
                    if latest is None or latest.state == "logged_out":
                        continue  # a retained will seen again after our own reconnect
                    state = state.model_copy(update={"since": utcnow()})
                if record_state(session, state):
                    log.info("agent %s is %s", state.agent, state.state)


async def record_call_quality(bus: Bus, db: Database) -> None:
    """Softphones that reach the bus publish their call quality there; keep it for supervisors."""
    async with bus.subscribe(CallQuality.pattern(), CallQuality) as reports:
        async for _path, report in reports:
            with db.session() as session:
                record_quality(session, report)
