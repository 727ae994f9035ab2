"""One dialer worker per Asterisk node at a time: a lease row per node (docs/faults.md).

Asterisk gives an ARI application's events to one websocket: a second worker connecting as the same
app takes the first one's event stream, and its reconciliation would treat the first one's live
calls as its own. So a worker connects to a node only while it holds the node's lease, a row of
`dialer_node_leases` (node, holder, expires_at) written in one conditional UPDATE -- taken when free
or run out, renewed by its holder every third of `dialer_lease_seconds` (every second while the
database refuses, until just before it runs out), released when the worker stops. A second worker
waits; when the holder dies its lease runs out and the waiting worker takes the node over,
reconciling (adopting) the dead one's calls. A holder that cannot renew in time (its database away
past the lease) stops dialling on that node until it holds it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, Database, UTCDateTime, utcnow

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a renewal the database refused is tried again this often


class NodeLease(Base):
    __tablename__ = "dialer_node_leases"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


def new_holder(tag: str | None = None) -> str:
    """This worker's name in the lease: host, process and a random part, `tag` if given (a
    restarted process is another holder)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{tag or uuid.uuid4().hex[:8]}"


def take(session: Session, node: str, holder: str, now: datetime, seconds: float) -> bool:
    """Take or renew `node`'s lease for `holder` until now + seconds: True if held now. One
    conditional UPDATE (or the first INSERT), so two workers never both win."""
    until = now + timedelta(seconds=seconds)
    current = session.scalar(select(NodeLease.holder).where(NodeLease.node == node))
    if current is None:
        session.add(NodeLease(node=node, holder=holder, acquired_at=now, renewed_at=now, expires_at=until))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return False  # another worker inserted it first
        return True
    values = {"holder": holder, "renewed_at": now, "expires_at": until}
    if current != holder:
        values["acquired_at"] = now
    result = session.execute(
        update(NodeLease)
        .where(NodeLease.node == node, or_(NodeLease.holder == holder, NodeLease.expires_at <= now))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def give_up(session: Session, node: str, holder: str) -> None:
    session.execute(
        delete(NodeLease)
        .where(NodeLease.node == node, NodeLease.holder == holder)
        .execution_options(synchronize_session=False)
    )


def holder_of(session: Session, node: str, now: datetime) -> str | None:
    """Who holds `node` at `now` (None: nobody, or the lease ran out)."""
    lease = session.get(NodeLease, node)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder


class Leases:
    """This worker's leases: wait for a node, keep it, give it back."""

    def __init__(
        self,
        db: Database,
        seconds: float,
        *,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.seconds = seconds
        self.now = now
        self.sleep = sleep
        self.holder = holder or new_holder()
        self.held: set[str] = set()
        self.taken = 0  # times a lease was taken (the first time, or again after it was lost)
        self.waited = 0  # times a look found the node held by another worker
        self.lost = 0  # times a held lease was lost (another worker took it, or it ran out unrenewed)
        self._renewed: dict[str, datetime] = {}  # node -> when its lease was last asked for, and got

    @property
    def every(self) -> float:
        return max(0.05, self.seconds / 3)

    async def _take(self, node: str) -> bool:
        def write() -> bool:
            with self.db.session() as session:
                return take(session, node, self.holder, self.now(), self.seconds)

        return await asyncio.to_thread(write)

    @property
    def margin(self) -> float:
        """How long before the lease runs out its holder stops: the other worker may take the
        node at `expires_at` by the database's clock, and ours may run a little behind."""
        return self.seconds / 10

    async def _take_at(self, node: str) -> datetime | None:
        """Take or renew: the moment asked (the lease runs until no earlier than it + seconds),
        or None if another worker holds the node."""
        asked = self.now()
        return asked if await self._take(node) else None

    async def wait_for(self, node: str) -> None:
        """Return once this worker holds `node` (waiting while another worker does)."""
        told = False
        while True:
            try:
                asked = await self._take_at(node)
                if asked is not None:
                    self.held.add(node)
                    self._renewed[node] = asked
                    self.taken += 1
                    log.info("node %s: lease taken by %s", node, self.holder)
                    return
                self.waited += 1
                if not told:
                    log.warning("node %s is held by another dialer worker: waiting for its lease", node)
                    told = True
            except SQLAlchemyError as exc:
                log.warning("node %s: lease not taken (%s); trying again", node, exc)
            await self.sleep(self.every)

    async def keep(self, node: str) -> None:
        """Renew `node`'s lease until it is lost (another worker holds it, or it could not be
        renewed before it ran out); then return. A renewal the database refuses is tried again
        every second until just before the lease runs out: a database outage shorter than the
        lease's remaining time (15 s, issue 13) costs the worker nothing -- no other worker can
        take the node through a database that is away."""
        renewed = self._renewed.get(node, self.now())
        delay, failing = self.every, False
        while True:
            await self.sleep(delay)
            try:
                asked = await self._take_at(node)
                if asked is not None:
                    if failing:
                        log.warning("node %s: lease renewed again", node)
                    renewed, delay, failing = asked, self.every, False
                    continue
                log.error("node %s: lease lost to another worker", node)
            except SQLAlchemyError as exc:
                left = self.seconds - (self.now() - renewed).total_seconds() - self.margin
                if left > 0:
                    if not failing:
                        log.warning(
                            "node %s: lease not renewed (%s); trying again for %.0f s", node, exc, left
                        )
                    delay, failing = min(RETRY_SECONDS, self.every, left), True
                    continue
                log.error("node %s: lease could not be renewed before it ran out: %s", node, exc)
            self.lost += 1
            self.held.discard(node)
            self._renewed.pop(node, None)
            return

    def snapshot(self) -> dict[str, Any]:
        """For the fault board (var/dialer/faults.json): who this worker is, what it holds, and
        how often it took, waited for and lost a node."""
        return {
            "holder": self.holder,
            "held": sorted(self.held),
            "taken": self.taken,
            "waited": self.waited,
            "lost": self.lost,
        }

    async def release_all(self) -> None:
        def write(node: str) -> None:
            with self.db.session() as session:
                give_up(session, node, self.holder)

        for node in list(self.held):
            try:
                await asyncio.to_thread(write, node)
            except SQLAlchemyError as exc:
                log.warning("node %s: lease not given back (%s); it runs out by itself", node, exc)
            self.held.discard(node)
