"""Wrap-ups the server has not confirmed yet, kept until it has.

Every wrap-up the agent saves goes through the outbox. It is written down first, then posted:

- written down: with a data folder (``warmline softphone --data-dir``; the UI mode has one by
  default), as a line of a JSON-lines file, flushed and fsynced before the post, so a wrap-up
  survives the phone being closed or the PC restarting; without one, in memory only (kept while
  the phone runs, lost when it is closed);
- posted: one the server could not take for a passing reason (unreachable, a 5xx, 408, 425, 429,
  or a 401 once the session has ended -- the next start, signed in again, delivers it from the
  file) is retried, oldest first, with exponential backoff capped at ``max_delay`` seconds, until
  the server has it. The server stores a repeated wrap-up once, so posting again after a reply
  that was lost is harmless. One the server refuses for good (another 4xx: not the agent's call,
  an unknown call, invalid input, a different wrap-up already stored) is dropped and the reason
  said: retrying could never succeed.

File lines are ``{"add": ID, "record": {...}}`` and ``{"done": ID, "outcome": ...}``; at start the
file is read (a torn last line from a crash is skipped) and rewritten with what is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from softphone.provisioning import ProvisioningError

log = logging.getLogger(__name__)

Post = Callable[[dict[str, Any]], Awaitable[Any]]
TRANSIENT_STATUSES = frozenset({401, 408, 425, 429})


@dataclass(frozen=True)
class Delivery:
    """What became of one wrap-up: the server has it (``stored``), it is kept and retried
    (``queued``), or the server refused it for good (``refused``, with the server's reason)."""

    outcome: Literal["stored", "queued", "refused"]
    record: dict[str, Any]
    response: dict[str, Any] | None = None
    reason: str | None = None
    status: int | None = None  # the HTTP status of a refusal
    errors: dict[str, str] = field(default_factory=dict)  # a 422's failing form questions


@dataclass
class _Entry:
    id: str
    record: dict[str, Any]
    tries: int = 0


def transient(exc: ProvisioningError) -> bool:
    """Worth trying again later: the server was unreachable or said so."""
    return exc.status is None or exc.status >= 500 or exc.status in TRANSIENT_STATUSES


@dataclass
class WrapUpOutbox:
    post: Post
    path: Path | None = None
    first_delay: float = 1.0
    max_delay: float = 60.0
    # Called for a wrap-up settled by the retries (not by `submit`'s own first try).
    on_settled: Callable[[Delivery], None] | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests pass one that does not wait
    _pending: list[_Entry] = field(default_factory=list, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            self._load(self.path)
        if self._pending:
            self._wake.set()

    # ------------------------------------------------------------------ the file

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries: dict[str, _Entry] = {}
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                try:
                    item = json.loads(line)
                except ValueError:
                    log.warning("%s: line %d is not JSON (torn by a crash?); skipped", path, number)
                    continue
                if isinstance(item, dict) and "add" in item and isinstance(item.get("record"), dict):
                    entries[str(item["add"])] = _Entry(str(item["add"]), item["record"])
                elif isinstance(item, dict) and "done" in item:
                    entries.pop(str(item["done"]), None)
        self._pending = list(entries.values())
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for entry in self._pending:
                f.write(json.dumps({"add": entry.id, "record": entry.record}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if self._pending:
            log.info("%d wrap-ups from an earlier run still to be sent", len(self._pending))

    def _write(self, item: dict[str, Any]) -> None:
        if self.path is None:
            return
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # a full or vanished disk: the wrap-up is still kept in memory and sent
            log.error("%s: cannot write (%s); this wrap-up is kept in memory only", self.path, exc)

    # ------------------------------------------------------------------ sending

    @property
    def pending(self) -> list[dict[str, Any]]:
        """The wrap-ups not yet with the server, oldest first."""
        return [e.record for e in self._pending]

    @property
    def durable(self) -> bool:
        return self.path is not None

    async def submit(self, record: dict[str, Any]) -> Delivery:
        """Keep the wrap-up, then try to post it once now; retried later if that fails."""
        entry = _Entry(uuid.uuid4().hex, dict(record))
        await asyncio.to_thread(self._write, {"add": entry.id, "record": entry.record})
        self._pending.append(entry)
        delivery = await self._deliver(entry)
        if delivery is None or delivery.outcome == "queued":
            self._wake.set()
            return Delivery("queued", entry.record)
        return delivery

    async def _deliver(self, entry: _Entry) -> Delivery | None:
        """Post one entry; None when the other path (submit or the retries) settled it meanwhile."""
        async with self._lock:
            if entry not in self._pending:
                return None
            entry.tries += 1
            try:
                response = await self.post(entry.record)
            except ProvisioningError as exc:
                if transient(exc):
                    log.info("wrap-up %s not sent yet (try %d): %s", entry.id, entry.tries, exc)
                    return Delivery("queued", entry.record, reason=str(exc), status=exc.status)
                delivery = Delivery(
                    "refused",
                    entry.record,
                    reason=exc.detail or str(exc),
                    status=exc.status,
                    errors=exc.errors,
                )
            else:
                delivery = Delivery("stored", entry.record, response if isinstance(response, dict) else None)
            self._pending.remove(entry)
            await asyncio.to_thread(self._write, {"done": entry.id, "outcome": delivery.outcome})
            if delivery.outcome == "refused":
                log.warning("wrap-up %s refused by the server: %s", entry.id, delivery.reason)
            return delivery

    async def run(self) -> None:
        """Retry what is pending until the server has it; runs until cancelled."""
        delay = self.first_delay
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            entry = self._pending[0]
            delivery = await self._deliver(entry)
            if delivery is None:
                continue
            if delivery.outcome != "queued":
                delay = self.first_delay
                if self.on_settled is not None:
                    with contextlib.suppress(Exception):  # telling the agent must not stop the retries
                        self.on_settled(delivery)
                continue
            await self.sleep(delay)
            delay = min(delay * 2, self.max_delay)
