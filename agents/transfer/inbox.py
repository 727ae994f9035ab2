"""How a step an agent asked for over HTTP reaches the process that holds their call.

The API and the call may run in different processes (``warmline up`` with API workers, a separate
``warmline dialer run``), so the API only writes the step on the transfer's row (``action``). Each
process has one inbox per database: the calls it holds watch their ``call_ref``; while any does,
the inbox looks for steps every ``poll`` seconds (one query for all calls, not one per call),
takes each of its own calls' steps with a guarded UPDATE (taken once) and puts it into that call's
event queue as a ``WarmlineTransfer`` event -- so the call reads the agent's steps and Asterisk's
events from one queue, in the order they came. A step nobody took within ``ACTION_EXPIRY`` (the
call ended first) is dropped, and a transfer that never started is marked ``not_taken``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents.transfer.models import Transfer
from agents.transfer.service import ACTION_EXPIRY
from core.ari_events import ChannelEvents
from core.db import Database, utcnow

log = logging.getLogger(__name__)

TRANSFER_EVENT = "WarmlineTransfer"
POLL = 0.5


def take_steps(session: Session, call_refs: list[str], now: datetime) -> list[dict[str, Any]]:
    """The steps waiting for these calls, each taken (cleared) by this caller only; steps too old
    for anyone are dropped. Nothing waiting (nearly always): one SELECT, no write."""
    waiting = list(
        session.scalars(
            select(Transfer).where(Transfer.action.is_not(None)).order_by(Transfer.action_at, Transfer.id)
        )
    )
    mine = set(call_refs)
    taken = []
    for row in waiting:
        if row.call_ref not in mine:
            if row.action_at is not None and row.action_at < now - ACTION_EXPIRY:
                _expire(session, row, now)
            continue
        done = session.execute(
            update(Transfer)
            .where(Transfer.id == row.id, Transfer.action == row.action)
            .values(action=None)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(done, "rowcount", 0) or 0) == 1:
            taken.append(
                {
                    "id": row.id,
                    "call_ref": row.call_ref,
                    "action": row.action,
                    "from_agent": row.from_agent,
                    "kind": row.kind,
                    "mode": row.mode,
                    "target": row.target,
                    "number": row.number,
                }
            )
    return taken


def _expire(session: Session, row: Transfer, now: datetime) -> None:
    """A step no process took in time (the call had ended): dropped; a transfer that never started
    failed (``not_taken``)."""
    values: dict[str, Any] = {"action": None}
    if row.state == "requested":
        values.update(state="failed", result="not_taken", ended_at=now)
    session.execute(
        update(Transfer)
        .where(Transfer.id == row.id, Transfer.action == row.action)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


class TransferInbox:
    """The steps for the calls this process holds, read from the database while any is live."""

    def __init__(self, db: Database, *, poll: float = POLL, now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.poll = poll
        self.now = now
        self._watchers: dict[str, list[ChannelEvents]] = {}
        self._task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()

    def watch(self, call_ref: str, events: ChannelEvents) -> None:
        """Deliver this call's steps to ``events`` (the innermost watcher of a call gets them)."""
        self._watchers.setdefault(call_ref, []).append(events)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="transfer-inbox")

    def unwatch(self, call_ref: str, events: ChannelEvents) -> None:
        stack = self._watchers.get(call_ref, [])
        with contextlib.suppress(ValueError):
            stack.remove(events)
        if not stack:
            self._watchers.pop(call_ref, None)

    async def _run(self) -> None:
        while self._watchers:
            await asyncio.sleep(self.poll)
            refs = list(self._watchers)
            if not refs:
                break
            try:
                steps = await asyncio.to_thread(self._take, refs)
            except Exception:  # the database away for a moment: the steps wait for the next look
                log.exception("reading transfer steps")
                continue
            for step in steps:
                stack = self._watchers.get(step["call_ref"])
                if stack:
                    stack[-1].put({"type": TRANSFER_EVENT, "transfer": step})

    def _take(self, refs: list[str]) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return take_steps(session, refs, self.now())


_INBOXES: dict[tuple[int, str], TransferInbox] = {}


def inbox_for(db: Database, now: Callable[[], datetime] = utcnow) -> TransferInbox:
    """This event loop's inbox for ``db`` (one per loop: tests run each in a loop of its own)."""
    loop = asyncio.get_running_loop()
    for key in [k for k, v in _INBOXES.items() if v.loop.is_closed()]:
        del _INBOXES[key]
    key = (id(loop), db.url)
    inbox = _INBOXES.get(key)
    if inbox is None or inbox.loop is not loop:
        inbox = _INBOXES[key] = TransferInbox(db, now=now)
    return inbox
