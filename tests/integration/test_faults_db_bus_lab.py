"""Database and bus faults mid-campaign against the real lab (issue 13): `warmline dialer run` (a
subprocess, as in production) dials a small campaign while

- PostgreSQL is cut for 15 s (every connection reset, new ones refused, by a TCP proxy between
  the dialer and the machine's PostgreSQL: the shared server itself is never touched);
- the SQLite file is locked by another writer (BEGIN EXCLUSIVE) for 35 s;
- a private Mosquitto is killed with -9 and started again.

Each run is checked from the database: 0 contacts lost (every contact finished, with exactly one
attempt: the campaign has one try per contact), 0 attempts doubled, 0 attempts left unclosed,
0 live calls cut (no call answered before the fault ended as "interrupted" or with an error), no
channel left on Asterisk; for the bus, every outcome reached a subscriber. The figures line of
each run is printed (``FIGURES ...``) for docs/faults-database-bus.md.

The bookkeeping of the same faults, branch by branch, on virtual time: tests/unit/test_dialer_faults.py.
Lab on its own ports (slot "faults_db_bus", tests/lab.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState
from tests.conftest import on_database
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils.mosquitto import Mosquitto
from tests.utils.processes import stop
from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

PORTS = lab_ports("faults_db_bus")
WARMLINE = Path(sys.executable).with_name("warmline")
LIVE = (AttemptState.created, AttemptState.dialing, AttemptState.answered)
# 12 callees (lab callee behaviour by last digit): 2 who answer and hang up at once, 5 who confirm,
# 5 who listen and hang up after the question: calls of some 35-40 s. The fault starts when calls
# have been answered long enough that they end during it (their outcomes must wait) after living
# through its start: `ripe_after` seconds, by the fault's length.
DIGITS = "88" + "00000" + "11111"
FINISH = 150.0  # seconds: a safety net for the campaign's end, never what the test proves


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("faults-db-bus") / "var", PORTS) as settings:
        yield settings


# ------------------------------------------------------------------ helpers


def make_campaign(db: Database, name: str) -> None:
    """One try per contact (a retry would hide a lost or doubled attempt), every hour open."""
    spec = {
        "name": name,
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "daily_cap": 10,
        "rolling_cap": 10,
        "max_channels": 12,
        "calls_per_second": 4,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="test")
    lines = ["name,phone,clinic,date"] + [
        f"客户{i},139{i:07d}{d},社区医院,明天" for i, d in enumerate(DIGITS)
    ]
    import_list(db, name, io.BytesIO(("\n".join(lines) + "\n").encode()), "list.csv", actor="test")
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="test")


def start_dialer(
    settings: Settings, db_url: str, name: str, log: Path, mqtt_port: int, prefix: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WARMLINE_VAR_DIR": str(settings.var_dir),
        "WARMLINE_DATABASE_URL": db_url,
        "WARMLINE_ASTERISK_NODES": json.dumps([{"ari_url": settings.asterisk_nodes[0].ari_url}]),
        "WARMLINE_TOPIC_PREFIX": prefix,
        "WARMLINE_MQTT_PORT": str(mqtt_port),
        "WARMLINE_DIALER_RING_TIMEOUT": "12",
    }
    out = log.open("ab")
    return subprocess.Popen(
        [str(WARMLINE), "dialer", "run", "--campaign", name], env=env, stdout=out, stderr=out
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def answered(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Attempt.id).where(Attempt.state == AttemptState.answered)))


def ripe(db: Database, after: float) -> int:
    """Live calls answered at least `after` seconds ago."""
    since = datetime.now(UTC) - timedelta(seconds=after)
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    Attempt.state == AttemptState.answered, Attempt.answered_at <= since
                )
            )
            or 0
        )


def campaign_over(db: Database, var_dir: Path) -> bool:
    with db.session() as session:
        open_ = session.scalar(
            select(func.count()).where(Contact.state.in_((ContactState.pending, ContactState.in_progress)))
        )
        live = session.scalar(select(func.count()).where(Attempt.state.in_(LIVE)))
    journal = var_dir / "dialer" / "outcomes.jsonl"
    pending = journal.exists() and journal.read_text().strip() != ""
    return not open_ and not live and not pending


def channels(settings: Settings) -> set[str]:
    async def ids() -> set[str]:
        async with lab_client(settings) as ari:
            return {c["id"] for c in await ari.channels()}

    return asyncio.run(ids())


def faults(var_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((var_dir / "dialer" / "faults.json").read_text()))
    except (OSError, ValueError):
        return {}


def bus_settled(var_dir: Path, since: datetime) -> bool:
    """The dialer's fault board, written after `since`, says its bus is connected, outbox empty."""
    state = faults(var_dir)
    try:
        fresh = datetime.fromisoformat(state["at"]) >= since
    except (KeyError, ValueError):
        return False
    outbox = state.get("bus_outbox") or {}
    return fresh and (state.get("bus") or {}).get("ok") is True and outbox.get("pending") == 0


def verdict(db: Database, settings: Settings, live_at_fault: set[str]) -> dict[str, Any]:
    """The ledger after the fault: what was lost, doubled, left open, cut."""
    with db.session() as session:
        contacts = list(session.scalars(select(Contact)))
        attempts = list(session.scalars(select(Attempt)))
    per_contact: dict[int, int] = {}
    for a in attempts:
        per_contact[a.contact_id] = per_contact.get(a.contact_id, 0) + 1
    lost = sum(
        1
        for c in contacts
        if per_contact.get(c.id, 0) == 0 or c.state not in (ContactState.done, ContactState.exhausted)
    )
    doubled = sum(n - 1 for n in per_contact.values() if n > 1) + sum(
        1 for c in contacts if c.attempts != per_contact.get(c.id, 0)
    )
    unclosed = sum(1 for a in attempts if a.state in LIVE or not a.outcome)
    cut = [
        {"id": a.id, "outcome": a.outcome, "detail": a.detail}
        for a in attempts
        if a.id in live_at_fault and (a.outcome == "interrupted" or "error" in (a.detail or {}))
    ]
    stray = len({a.id for a in attempts} & channels(settings))
    return {
        "contacts": len(contacts),
        "lost": lost,
        "doubled": doubled,
        "unclosed": unclosed,
        "cut": len(cut),
        "cut_attempts": cut,
        "stray": stray,
        "live_at_fault": len(live_at_fault),
    }


def check(figures: dict[str, Any], log: Path) -> None:
    print("FIGURES " + json.dumps(figures, sort_keys=True, default=str))
    text = log.read_text(errors="replace")
    # On failure, the dialer's lines about the calls it cut (or its last lines), not just its end.
    cut_ids = [a["id"] for a in figures["cut_attempts"]]
    about = [line for line in text.splitlines() if any(i in line for i in cut_ids)]
    tail = "\n".join(about[-40:]) if about else text[-3000:]
    assert figures["contacts"] == len(DIGITS)
    for key in ("lost", "doubled", "unclosed", "cut", "stray"):
        assert figures[key] == 0, (key, figures, tail)
    assert figures["live_at_fault"] >= 2, ("the fault must meet live calls", figures)


class Outcomes:
    """A persistent-session QoS 1 subscriber: the outcome events (by attempt) it has received."""

    def __init__(self, port: int, prefix: str) -> None:
        self.seen: dict[str, int] = {}
        self.health: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"faults-test-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.prefix = prefix
        self.client.on_connect = lambda c, *_a: c.subscribe(
            [(f"{prefix}/calls/+", 1), (f"{prefix}/health/dialer", 1)]
        )
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if msg.topic.endswith("/health/dialer"):
                self.health.append(body)
            elif body.get("kind") == "outcome":
                self.seen[body["call_id"]] = self.seen.get(body["call_id"], 0) + 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ------------------------------------------------------------------ the faults


def run_campaign(
    lab: Settings,
    db: Database,
    dialer_url: str,
    tmp_path: Path,
    fault: Callable[[], dict[str, Any]],
    *,
    broker: Mosquitto,
    ripe_after: float,
    subscriber: Outcomes | None = None,
) -> tuple[dict[str, Any], Path]:
    """Dial the campaign; when a few calls are answered, inject `fault` (it returns its own figures);
    then wait for the campaign to finish and read the ledger."""
    settings = lab  # the lab's var dir: its secrets (the ARI password) are there
    var_dir = lab.var_dir
    shutil.rmtree(var_dir / "dialer", ignore_errors=True)  # the journal and faults of this run only
    name = f"faults-{uuid.uuid4().hex[:6]}"
    make_campaign(db, name)
    log = tmp_path / "dialer.log"
    prefix = subscriber.prefix if subscriber is not None else f"warmline-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    proc = start_dialer(settings, dialer_url, name, log, broker.port, prefix)
    try:
        # The fault starts once the first calls have ended, with others still up: calls end
        # during the fault (their outcomes must wait) and calls live through it.
        wait_for("calls answered a while", lambda: ripe(db, ripe_after) >= 3, 90, log)
        live = answered(db)
        figures = fault()
        fault_over = datetime.now(UTC)
        after = wait_for("the campaign to finish", lambda: campaign_over(db, var_dir), FINISH, log)
        # The bus outbox is in memory: the dialer is stopped only once it has sent what it kept.
        wait_for("the dialer's bus outbox sent", lambda: bus_settled(var_dir, fault_over), 30, log)
        state = faults(var_dir)
    finally:
        stop(proc)
    figures |= verdict(db, lab, live)
    figures["finished_after_fault_s"] = round(after, 1)
    figures["campaign_s"] = round(time.monotonic() - started, 1)
    # What the journal replayed, as the dialer logged it (its fault board is rewritten every few s).
    replays = re.findall(
        r"outcome journal replayed: (\d+) applied, (\d+) rejected", log.read_text(errors="replace")
    )
    figures["journal_replayed"] = sum(int(a) for a, _r in replays)
    figures["journal_rejected"] = sum(int(r) for _a, r in replays)
    figures["db_outages_seen"] = (state.get("database") or {}).get("outages", 0)
    return figures, log


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    m.start()
    yield m
    m.stop()


@on_database("postgresql")
def test_postgresql_cut_for_15_s(
    lab: Settings, db: Database, db_url: str, tmp_path: Path, broker: Mosquitto
) -> None:
    url = make_url(db_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        through = url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)

        def cut() -> dict[str, Any]:
            proxy.cut()
            time.sleep(15.0)  # the fault's length (what is injected, not what is asserted)
            proxy.restore()
            return {"fault": "postgresql cut 15 s (proxy)", "refused_during_cut": proxy.refused}

        figures, log = run_campaign(lab, db, through, tmp_path, cut, broker=broker, ripe_after=22.0)
    check(figures, log)
    assert figures["db_outages_seen"] >= 1 and figures["journal_replayed"] >= 1, figures


@on_database("sqlite")
def test_sqlite_locked_by_another_writer_for_35_s(
    lab: Settings, db: Database, db_url: str, tmp_path: Path, broker: Mosquitto
) -> None:
    def lock() -> dict[str, Any]:
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        try:
            other.execute("BEGIN EXCLUSIVE")
            time.sleep(35.0)  # the fault's length
            other.execute("ROLLBACK")
        finally:
            other.close()
        return {"fault": "sqlite locked 35 s (BEGIN EXCLUSIVE)"}

    figures, log = run_campaign(lab, db, db_url, tmp_path, lock, broker=broker, ripe_after=8.0)
    check(figures, log)
    assert figures["db_outages_seen"] >= 1, figures


@on_database("sqlite")
def test_mosquitto_killed_and_restarted(
    lab: Settings, db: Database, db_url: str, tmp_path: Path, broker: Mosquitto
) -> None:
    subscriber = Outcomes(broker.port, f"warmline-test-{uuid.uuid4().hex[:8]}")
    try:
        time.sleep(1.5)  # the persistent session saved (autosave_interval 1) before the kill

        outage: dict[str, datetime] = {}

        def kill() -> dict[str, Any]:
            outage["from"] = datetime.now(UTC)
            broker.kill()
            time.sleep(8.0)  # the outage's length
            broker.start()
            outage["to"] = datetime.now(UTC)
            return {"fault": "mosquitto kill -9, 8 s, restarted"}

        figures, log = run_campaign(
            lab, db, db_url, tmp_path, kill, broker=broker, ripe_after=28.0, subscriber=subscriber
        )
        with db.session() as session:
            closed = set(session.scalars(select(Attempt.id).where(Attempt.outcome.is_not(None))))
            # Outcomes that came while the broker was away: they waited in the dialer's outbox.
            ends = [e for e in session.scalars(select(Attempt.ended_at)) if e is not None]
        figures_held = sum(outage["from"] <= e <= outage["to"] for e in ends)
        wait_for("every outcome on the bus", lambda: closed <= set(subscriber.seen), 30)
        figures["bus_outcomes_lost"] = len(closed - set(subscriber.seen))
        figures["bus_outcomes_received"] = len(subscriber.seen)
        figures["bus_outcomes_during_outage"] = figures_held
        figures["outage_s"] = round((outage["to"] - outage["from"]).total_seconds(), 1)
        figures["call_ends_from_kill_s"] = sorted(
            round((e - outage["from"]).total_seconds(), 1) for e in ends
        )
    finally:
        subscriber.close()
    check(figures, log)
    assert figures["bus_outcomes_lost"] == 0
