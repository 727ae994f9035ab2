"""The dialer's durable outcome journal: a call's outcome is on disk before it is in the database.

When a call ends, the dialer appends one JSON line to ``var/dialer/outcomes.jsonl`` (flushed and
fsynced) *before* it writes the outcome to the database, and a ``{"done": id}`` line after the
commit. An entry without its ``done`` line is pending: the database was unreachable (or the
process died between the two). Pending entries are replayed, in order, when the database is back
(and at the worker's start, before reconciliation) -- exactly once in effect, because applying an
outcome is idempotent by attempt id (closing a closed attempt changes nothing, see
``ledger.close``).

An entry the database refuses for good (an unknown attempt, a constraint it breaks) is not
retried: it goes to ``outcomes.rejected.jsonl`` with the reason, and is marked done. A torn last
line (the process died mid-write) is skipped and reported; the next append starts on a new line.
When nothing is pending the file is emptied, so it stays small.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
JOURNAL_NAME = "outcomes.jsonl"
REJECTED_NAME = "outcomes.rejected.jsonl"


class Rejected(Exception):
    """The database will never take this entry (the reason is the message)."""


def is_outage(exc: BaseException) -> bool:
    """A database error that means "not now" (unreachable, connection lost, locked), as opposed to
    "never" (a constraint, bad data): the first is retried, the second rejected."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class ReplayReport:
    applied: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    left: int = 0  # still pending: the database went away again mid-replay
    torn: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.applied)} applied, {len(self.rejected)} rejected, {self.left} left, {self.torn} torn"
        )


class OutcomeJournal:
    """Append-only, fsynced, thread-safe. `apply(entry)` writes one entry to the database."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / JOURNAL_NAME
        self.rejected_path = directory / REJECTED_NAME
        self.fsync = fsync
        self._lock = threading.RLock()
        self._whole: set[Path] = set()  # files whose last line this journal wrote (so ends whole)
        self._replay_lock = threading.Lock()
        self.appended = 0
        self.replayed = 0
        self.rejected = 0
        self._open: set[str] = {str(e["attempt_id"]) for e in self._pending_unlocked()[0]}

    # ------------------------------------------------------------ writing

    def _write(self, path: Path, line: str, *, durable: bool = True) -> None:
        with path.open("ab") as fh:
            # A torn last line (a process died mid-write): start ours on a new one. Only before
            # this journal's first write to the file: every line written here ends whole.
            if path not in self._whole and fh.tell() > 0:
                with path.open("rb") as rd:
                    rd.seek(-1, os.SEEK_END)
                    if rd.read(1) != b"\n":
                        fh.write(b"\n")
            fh.write(line.encode() + b"\n")
            fh.flush()
            if self.fsync and durable:
                os.fsync(fh.fileno())
        self._whole.add(path)

    def append(self, entry: JSON) -> None:
        """Durably record an outcome (an entry with an ``attempt_id``) before the database sees it."""
        if not entry.get("attempt_id"):
            raise ValueError("journal entry without attempt_id")
        with self._lock:
            self._write(self.path, json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str))
            self._open.add(str(entry["attempt_id"]))
            self.appended += 1

    def append_all(self, entries: list[JSON]) -> None:
        """`append` for several outcomes in one write and one fsync (a group commit: each entry is
        on disk, fsynced, when this returns, as after its own `append`)."""
        if not all(entry.get("attempt_id") for entry in entries):
            raise ValueError("journal entry without attempt_id")
        if not entries:
            return
        with self._lock:
            lines = "\n".join(
                json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str) for entry in entries
            )
            self._write(self.path, lines)
            self._open.update(str(entry["attempt_id"]) for entry in entries)
            self.appended += len(entries)

    def done(self, attempt_id: str) -> None:
        """The entry for `attempt_id` is in the database; empties the file when nothing is pending.
        Not fsynced: should a crash lose it, the entry is replayed and changes nothing (applying
        is idempotent), so one fsync per outcome is enough (the entry's own)."""
        with self._lock:
            self._open.discard(attempt_id)
            if self._open:
                self._write(self.path, json.dumps({"done": attempt_id}), durable=False)
            else:
                self.path.write_bytes(b"")  # nothing pending: the file starts again empty

    def done_all(self, attempt_ids: Collection[str]) -> None:
        """`done` for several entries written in one transaction, in one write."""
        with self._lock:
            self._open.difference_update(attempt_ids)
            if self._open:
                lines = "\n".join(json.dumps({"done": attempt_id}) for attempt_id in attempt_ids)
                self._write(self.path, lines, durable=False)
            else:
                self.path.write_bytes(b"")  # nothing pending: the file starts again empty

    # ------------------------------------------------------------ reading

    def _pending_unlocked(self) -> tuple[list[JSON], int]:
        if not self.path.exists():
            return [], 0
        entries: dict[str, JSON] = {}
        torn = 0
        raw = self.path.read_bytes().split(b"\n")
        for n, line in enumerate(raw, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not an object")
            except ValueError:
                torn += 1
                where = "last line" if n >= len(raw) - 1 else f"line {n}"
                log.warning("outcome journal %s: %s is torn or unreadable; skipped", self.path, where)
                continue
            if "done" in item:
                entries.pop(str(item["done"]), None)
            elif item.get("attempt_id"):
                entries.pop(str(item["attempt_id"]), None)  # a later entry for the same attempt wins
                entries[str(item["attempt_id"])] = item
        return list(entries.values()), torn

    def pending(self) -> list[JSON]:
        """Entries not yet in the database, oldest first."""
        with self._lock:
            return self._pending_unlocked()[0]

    def pending_ids(self) -> set[str]:
        with self._lock:
            return set(self._open)

    # ------------------------------------------------------------ replay

    def reject(self, entry: JSON, reason: str) -> None:
        with self._lock:
            self._write(
                self.rejected_path,
                json.dumps({"entry": entry, "reason": reason[:500]}, ensure_ascii=False, default=str),
            )
            self.rejected += 1
        log.error("outcome of attempt %s rejected by the database: %s", entry.get("attempt_id"), reason)

    def replay(self, apply: Callable[[JSON], None], *, skip: Collection[str] = ()) -> ReplayReport:
        """Write every pending entry with `apply` (one transaction each). Stops at the first outage
        (left pending); an entry refused for good goes to the rejected file. One replay at a time;
        `skip`: attempts whose outcome is being written right now by their own call."""
        report = ReplayReport()
        with self._replay_lock:
            with self._lock:
                entries, report.torn = self._pending_unlocked()
            entries = [e for e in entries if str(e["attempt_id"]) not in skip]
            for i, entry in enumerate(entries):
                attempt_id = str(entry["attempt_id"])
                try:
                    apply(entry)
                except Exception as exc:
                    if is_outage(exc):
                        report.left = len(entries) - i
                        log.warning("outcome replay paused, database away: %s", exc)
                        break
                    self.reject(entry, f"{type(exc).__name__}: {exc}")
                    report.rejected.append(attempt_id)
                else:
                    report.applied.append(attempt_id)
                    self.replayed += 1
                self.done(attempt_id)
        if entries:
            log.info("outcome journal replayed: %s", report.summary())
        return report
