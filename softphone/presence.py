"""The agent's state (logged out, available, on call, wrap-up, break) and how it is published.

`AgentStatus` is the state machine: which changes are allowed and with which reason codes. It
publishes every change as a retained `AgentState` through a `StatePublisher`:

- `BusPublisher`: straight onto MQTT through `core.bus`, with a last will of `logged_out`
  (reason `connection_lost`) so a softphone that vanishes is seen as logged out at once;
- `HttpPublisher`: through the server (`POST /api/agents/me/state`) for PCs that cannot reach
  the broker; the server records and publishes it the same way.

The server's work-hour ledger is built from these messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, get_args

import aiomqtt

from core.bus import QOS, Bus
from core.i18n import N_, _
from core.messages import AgentState, AgentStateName, BusMessage, CallQuality, utc_now
from softphone.provisioning import ProvisioningError, ServerClient

log = logging.getLogger(__name__)

STATES: tuple[AgentStateName, ...] = get_args(AgentStateName)
# Codes and their English words (marked for the catalogue; translated where they are shown or said).
BREAK_REASONS: dict[str, str] = {
    "rest": N_("Rest"),
    "lunch": N_("Meal"),
    "training": N_("Training"),
    "meeting": N_("Meeting"),
    "technical": N_("Technical problem"),
    "personal": N_("Personal"),
}
ALLOWED: dict[AgentStateName, frozenset[AgentStateName]] = {
    "logged_out": frozenset({"available", "break"}),
    "available": frozenset({"on_call", "break", "logged_out"}),
    "on_call": frozenset({"wrap_up", "on_call", "logged_out"}),
    "wrap_up": frozenset({"available", "break", "on_call", "logged_out"}),
    "break": frozenset({"available", "on_call", "logged_out"}),
}
SPOKEN: dict[AgentStateName, str] = {
    "logged_out": N_("logged out"),
    "available": N_("available"),
    "on_call": N_("on a call"),
    "wrap_up": N_("in wrap-up"),
    "break": N_("on a break"),
}


class StateError(ValueError):
    """A change that is not allowed from the current state (the message says why)."""


class StatePublisher(Protocol):
    async def publish_state(self, message: AgentState) -> None: ...
    async def publish_quality(self, message: CallQuality) -> None: ...
    async def close(self) -> None: ...


class AgentBus(Bus):
    """A bus whose last will is the agent's own `logged_out`, not only the component's health."""

    def __init__(self, *args: object, agent: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.agent = agent

    def _will(self) -> aiomqtt.Will | None:
        # A will is fixed when the connection is made, so `since` is that moment; the server takes
        # the reason `connection_lost` as "since the broker saw the softphone go".
        will = AgentState(agent=self.agent, state="logged_out", reason="connection_lost", since=utc_now())
        return aiomqtt.Will(will.topic(self.prefix), will.model_dump_json(), qos=QOS, retain=True)


class BusPublisher:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def publish_state(self, message: AgentState) -> None:
        await self._publish(message)

    async def publish_quality(self, message: CallQuality) -> None:
        await self._publish(message)

    async def _publish(self, message: BusMessage) -> None:
        await self.bus.publish(message)

    async def close(self) -> None:
        await self.bus.close()


class HttpPublisher:
    def __init__(self, server: ServerClient) -> None:
        self.server = server

    async def publish_state(self, message: AgentState) -> None:
        await self.server.set_state(message.state, message.reason)

    async def publish_quality(self, message: CallQuality) -> None:
        await self.server.post_quality(message.model_dump(mode="json", exclude={"v", "at", "agent"}))

    async def close(self) -> None:
        return None


class NullPublisher:
    """For practice and tests without a server."""

    def __init__(self) -> None:
        self.sent: list[BusMessage] = []

    async def publish_state(self, message: AgentState) -> None:
        self.sent.append(message)

    async def publish_quality(self, message: CallQuality) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None


Listener = Callable[[AgentState], None]


class AgentStatus:
    def __init__(self, agent: str, publisher: StatePublisher, on_change: Listener | None = None) -> None:
        self.agent = agent
        self.publisher = publisher
        self.state: AgentStateName = "logged_out"
        self.reason: str | None = None
        self.since: datetime = utc_now()
        self._on_change = on_change

    def can(self, state: AgentStateName) -> bool:
        return state in ALLOWED[self.state]

    async def change(self, state: AgentStateName, reason: str | None = None) -> AgentState:
        if state == "break" and reason not in BREAK_REASONS:
            raise StateError(_("A break needs a reason: one of {reasons}.", reasons=", ".join(BREAK_REASONS)))
        if state != "break" and state not in ("logged_out",) and reason is not None and len(reason) > 64:
            raise StateError(_("A reason is at most 64 characters."))
        if not self.can(state):
            raise StateError(
                _("Cannot go from {old} to {new}.", old=_(SPOKEN[self.state]), new=_(SPOKEN[state]))
            )
        self.state, self.reason, self.since = state, reason, utc_now()
        message = AgentState(agent=self.agent, state=state, reason=reason, since=self.since)
        if self._on_change is not None:
            self._on_change(message)
        try:
            await self.publisher.publish_state(message)
        except (ProvisioningError, OSError) as exc:
            log.warning("agent state %s not published: %s", state, exc)
        return message

    def spoken(self) -> str:
        text = _(SPOKEN[self.state])
        if self.state == "break" and self.reason:
            reason = BREAK_REASONS.get(self.reason)
            text += _(" ({reason})", reason=_(reason) if reason else self.reason)
        return text
