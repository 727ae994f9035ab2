"""What the dialer knows about its own faults: the database and the bus, up or down, since when.

`DatabaseWatch` is told of every database error the dialer meets (`failed`) and every success
(`succeeded`); after a failure that means an outage (see `journal.is_outage`) the database is
*down*: no new call is started (live ones go on), and the watch probes it every `probe_every`
seconds -- on SQLite with a write lock taken and given back at once, so a file locked by another
writer counts as down too, with a short busy timeout so the probe never waits 30 s. When a probe
succeeds the database is *up* again: the recovery hook runs (the outcome journal's replay) and
new calls start again.

`FaultBoard` gathers the watch's, the bus's and ARI's (per node: `Pressure.fault`) state into what
`/healthz`, the campaign figures and the live pages show (`dialer` section), written to ``var/dialer/faults.json`` so the API
process sees it without asking the dialer, and published as the retained ``health/dialer``.

The clock is injected (`monotonic`), and the probe is a plain function, so tests drive both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db import Database
from core.i18n import _
from dialer.engine.journal import is_outage
from dialer.welfare.models import Alert, AlertState
from dialer.welfare.service import raise_alert
from dialer.welfare.service import resolve as resolve_alert

log = logging.getLogger(__name__)

FAULTS_NAME = "faults.json"
SQLITE_PROBE_BUSY_MS = 250


def probe_database(db: Database) -> None:
    """Raise if the database cannot take a write now. On SQLite a writer holding the lock makes
    `BEGIN IMMEDIATE` fail after a short busy timeout (a plain SELECT would still succeed in WAL)."""
    if db.engine.dialect.name == "sqlite":
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(f"PRAGMA busy_timeout={SQLITE_PROBE_BUSY_MS}")
            try:
                raw.rollback()  # no open transaction of the driver's own
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("ROLLBACK")
            except db.engine.dialect.loaded_dbapi.Error as exc:
                raise OperationalError("BEGIN IMMEDIATE", {}, exc) from exc
            finally:
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        finally:
            raw.close()
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@dataclass
class DatabaseWatch:
    """Up or down, with the outage's start and count. Not thread-bound: `failed`/`succeeded` may be
    called from worker threads (plain attribute writes)."""

    probe: Callable[[], None]
    monotonic: Callable[[], float] = time.monotonic
    probe_every: float = 1.0
    probe_timeout: float = 5.0
    on_change: Callable[[bool, str], None] | None = None
    up: bool = True
    down_since: float | None = None
    reason: str = ""
    outages: int = 0
    longest_outage: float = 0.0
    last_probe: float = field(default=-1e18)
    last_write: float = field(default=-1e18)  # the last write that worked (as good as a probe)
    strikes: int = 0  # probes failed in a row

    def failed(self, exc: BaseException) -> bool:
        """Note a database error; True when it means an outage (the database is now down)."""
        if not is_outage(exc):
            return False
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        if self.up:
            self.up = False
            self.down_since = self.monotonic()
            self.outages += 1
            self.last_probe = self.monotonic()
            log.warning("database unreachable: %s; new calls paused, live calls go on", reason)
            self.reason = reason
            self._changed()
        return True

    def succeeded(self) -> None:
        """A database write or probe worked: the database is up."""
        self.last_write = self.monotonic()
        if self.up:
            return
        took = self.monotonic() - (self.down_since or self.monotonic())
        self.longest_outage = max(self.longest_outage, took)
        self.up = True
        self.down_since = None
        self.reason = ""
        log.warning("database back after %.1f s; new calls resume", took)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.up, self.reason)
            except Exception:
                log.exception("database watch: on_change hook failed")

    def due(self) -> bool:
        """Down, and time for the next probe."""
        return not self.up and self.monotonic() - self.last_probe >= self.probe_every

    def check(self) -> bool:
        """Probe now (blocking: call it in a thread); True when the database is up. A database
        believed up is declared down by probes only after two failures in a row (one probe may
        meet the dialer's own write holding SQLite's lock); a failed real write needs one."""
        self.last_probe = self.monotonic()
        try:
            self.probe()
        except Exception as exc:
            self.strikes += 1
            if self.up and self.strikes < 2:
                return True
            if not self.failed(exc):  # not an outage kind of error: still say why
                self.reason = f"{type(exc).__name__}: {exc}"[:300]
            return False
        self.strikes = 0
        self.succeeded()
        return True

    async def check_async(self) -> bool:
        try:
            async with asyncio.timeout(self.probe_timeout):
                return await asyncio.to_thread(self.check)
        except TimeoutError:
            self.last_probe = self.monotonic()
            return False

    def down_for(self) -> float:
        return 0.0 if self.up or self.down_since is None else self.monotonic() - self.down_since

    def snapshot(self) -> dict[str, Any]:
        return {
            "ok": self.up,
            "down_for_s": round(self.down_for(), 1),
            "reason": self.reason,
            "outages": self.outages,
            "longest_outage_s": round(self.longest_outage, 1),
        }


@dataclass
class FaultBoard:
    """The dialer's faults as others read them: a small JSON file, rewritten atomically."""

    path: Path
    database: DatabaseWatch
    bus_connected: Callable[[], bool | None] = lambda: None  # None: the dialer has no bus
    extra: Callable[[], dict[str, Any]] = dict  # the journal's and the bus's counters
    ari: Callable[[], dict[str, dict[str, Any]]] = dict  # node -> Pressure.fault()
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def state(self) -> dict[str, Any]:
        bus = self.bus_connected()
        degraded = []
        if not self.database.up:
            degraded.append("database")
        if bus is False:
            degraded.append("bus")
        nodes = self.ari()
        if any(n.get("degraded") for n in nodes.values()):
            degraded.append("ari_slow")
        return {
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            "new_calls_paused": not self.database.up,
            "calls_held_back": any(n.get("holding_back") for n in nodes.values()),
            "database": self.database.snapshot(),
            "bus": {"ok": bus},
            "ari": nodes,
            **self.extra(),
            "at": self.now().isoformat(),
            "pid": os.getpid(),
        }

    def write(self) -> dict[str, Any]:
        state = self.state()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False))
        os.replace(tmp, self.path)
        return state


def read_faults(
    var_dir: Path, *, max_age_s: float = 120.0, now: datetime | None = None
) -> dict[str, Any] | None:
    """The dialer's last fault report, or None when no dialer wrote one recently (not running)."""
    path = var_dir / "dialer" / FAULTS_NAME
    try:
        state = json.loads(path.read_text())
        at = datetime.fromisoformat(state["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(state, dict):
        return None
    age = ((now or datetime.now(UTC)) - at).total_seconds()
    if age > max_age_s:
        return None
    state["age_s"] = round(age, 1)
    return state


def campaign_faults(var_dir: Path) -> dict[str, Any]:
    """What the campaign figures say of the dialer's faults: ``status`` ok, degraded, or unknown
    (no dialer reported lately), what is degraded, whether new calls are paused (database) or held
    back (ARI slow), how many outcomes wait in the journal, and -- while ARI is slow -- ``ari``: the
    slowest node's answer time (ms), the narrowest window and the starts held back in all."""
    state = read_faults(var_dir)
    if state is None:
        return {"status": "unknown", "degraded": [], "new_calls_paused": False, "journal_pending": 0}
    out: dict[str, Any] = {
        "status": state.get("status", "unknown"),
        "degraded": list(state.get("degraded") or []),
        "new_calls_paused": bool(state.get("new_calls_paused")),
        "journal_pending": int((state.get("journal") or {}).get("pending") or 0),
    }
    slow = {k: n for k, n in (state.get("ari") or {}).items() if isinstance(n, dict) and n.get("degraded")}
    nodes = list(slow.values())
    if "ari_slow" in out["degraded"] and nodes:
        out["calls_held_back"] = bool(state.get("calls_held_back"))
        out["ari"] = {
            "ms": max(int(n.get("ari_ms") or 0) for n in nodes),
            "window": min(int(n.get("ari_window") or 0) for n in nodes),
            "held_back": sum(int(n.get("ari_held_back") or 0) for n in nodes),
            "nodes": sorted(slow),
        }
    return out


HELD_BACK_KIND = "calls_held_back"
"""The supervisors' alert (``welfare_alerts``, the console's alerts page, the bus) while a node's
slow ARI holds calls back; ``attempt_id`` is ``ari:<node>``, so each node has one at a time."""
ALERT_ACTOR = "dialer"


def held_back_key(node: str) -> str:
    return f"ari:{node}"[:64]


def raise_held_back(session: Session, node: str, fault: dict[str, Any]) -> int:
    """Open the node's held-back alert unless one is unresolved already; its id."""
    key = held_back_key(node)
    existing = session.scalar(
        select(Alert.id).where(
            Alert.kind == HELD_BACK_KIND, Alert.attempt_id == key, Alert.state != AlertState.resolved
        )
    )
    if existing is not None:
        return int(existing)
    detail = {
        "node": node,
        "ari_ms": fault.get("ari_ms", 0),
        "ari_window": fault.get("ari_window", 0),
        "ari_held_back": fault.get("ari_held_back", 0),
    }
    alert = raise_alert(
        session, campaign=None, contact=None, attempt_id=key, kind=HELD_BACK_KIND, detail=detail,
        actor=ALERT_ACTOR,
    )  # fmt: skip
    return alert.id


def resolve_held_back(session: Session, node: str) -> list[int]:
    """Resolve the node's unresolved held-back alert(s) (a supervisor may have resolved it already)."""
    key = held_back_key(node)
    ids = list(
        session.scalars(
            select(Alert.id).where(
                Alert.kind == HELD_BACK_KIND, Alert.attempt_id == key, Alert.state != AlertState.resolved
            )
        )
    )
    for alert_id in ids:
        resolve_alert(
            session,
            alert_id,
            actor=ALERT_ACTOR,
            resolution=_("ARI answers in time again: no call is held back any more."),
        )
    return ids


@dataclass
class HeldBackAlerts:
    """Raises a node's alert once when its calls start being held back and resolves it when they
    no longer are -- on transitions only, never every pass. A database error leaves the state as it
    was, so the next pass tries again."""

    db: Database
    holding: dict[str, bool] = field(default_factory=dict)

    def changes(self, nodes: dict[str, dict[str, Any]]) -> dict[str, bool]:
        """The nodes whose held-back state differs from what the alerts say (node -> holding now)."""
        return {
            name: bool(f.get("holding_back"))
            for name, f in nodes.items()
            if bool(f.get("holding_back")) != self.holding.get(name, False)
        }

    def apply(self, nodes: dict[str, dict[str, Any]]) -> tuple[list[int], list[int]]:
        """Blocking (run it in a thread): the alerts raised and resolved now."""
        raised: list[int] = []
        resolved: list[int] = []
        for name, holding in self.changes(nodes).items():
            with self.db.session() as session:
                if holding:
                    raised.append(raise_held_back(session, name, nodes[name]))
                else:
                    resolved.extend(resolve_held_back(session, name))
            self.holding[name] = holding
        return raised, resolved
