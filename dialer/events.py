"""Campaign messages on the bus (the shared conventions are core.messages.BusMessage's).

- `campaigns/{campaign}/status` (retained): the campaign's status, so a dialer worker that starts
  or reconnects knows at once whether to dial;
- `campaigns/{campaign}/imports`: a list was imported (counts only; never a phone number).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio.from_thread
from pydantic import Field

from core.bus import Bus
from core.messages import BusMessage, TopicLevel


class CampaignStatusChanged(BusMessage):
    topic_template: ClassVar[str] = "campaigns/{campaign}/status"
    retained: ClassVar[bool] = True

    campaign: TopicLevel
    status: Literal["draft", "running", "paused", "finished"]
    by: str = Field(min_length=1, max_length=64)


class ListImported(BusMessage):
    topic_template: ClassVar[str] = "campaigns/{campaign}/imports"
    retained: ClassVar[bool] = False

    campaign: TopicLevel
    import_id: int
    rows: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    skipped: int = Field(ge=0)
    by: str = Field(min_length=1, max_length=64)


async def publish(bus: Bus | None, message: BusMessage) -> bool:
    """Send when the service has a bus (it queues while disconnected); False when it has none."""
    if bus is None:
        return False
    return await bus.publish(message)


def publish_from_thread(state: Any, message: BusMessage) -> bool:
    """The same from a synchronous route (it runs in a worker thread of the event loop)."""
    bus: Bus | None = getattr(state, "bus", None)
    if bus is None:
        return False
    try:
        return anyio.from_thread.run(publish, bus, message)
    except RuntimeError:  # not in a worker thread of a running loop (e.g. called from a script)
        return False
