"""Database faults in the dialer: the outcome journal and the database watch (issue 13).

The journal on both databases: an outcome journalled while the database was away is written once
when it is back, however often the replay runs (idempotent by attempt id); a torn last line is
skipped; an entry the database refuses goes to the rejected file with the reason. The watch on an
injected clock. Then a whole campaign on the fake Asterisk (virtual time) through a 15 s database
outage, and through a 45 s one (past the node's 30 s lease: the worker stops following its node and
takes it back): no new call starts while it lasts, no live call is cut off, every outcome is in the
ledger afterwards, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.db import Database
from core.messages import BusMessage, CallEvent, ServiceHealth
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.faults import DatabaseWatch, FaultBoard, probe_database, read_faults
from dialer.engine.journal import OutcomeJournal, Rejected, is_outage
from dialer.engine.ledger import claim
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState, Contact
from dialer.reconcile import reconcile
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import VirtualTimeLoop, run_virtual
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - silent_prompts is an autouse fixture
    CAMPAIGN,
    FINISH_WITHIN,
    NODE,
    campaign_over,
    check_ledger,
    in_flow,
    lab_callee,
    make_campaign,
    silent_prompts,
    worker,
)
from tests.utils import until
from tests.utils.tcp_proxy import TcpProxy

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ the journal alone


def test_pending_entries_and_done_lines(tmp_path: Path) -> None:
    journal = OutcomeJournal(tmp_path)
    journal.append({"attempt_id": "a", "kind": "close"})
    journal.append({"attempt_id": "b", "kind": "close"})
    journal.done("a")
    assert [e["attempt_id"] for e in journal.pending()] == ["b"]
    assert OutcomeJournal(tmp_path).pending_ids() == {"b"}, "a new process sees what is pending"
    journal.done("b")
    assert journal.path.read_text() == "", "nothing pending: the file starts again empty"
    with pytest.raises(ValueError, match="attempt_id"):
        journal.append({"kind": "close"})


def test_append_all_records_every_entry_in_one_write(tmp_path: Path) -> None:
    journal = OutcomeJournal(tmp_path)
    journal.append_all([{"attempt_id": "a", "kind": "close"}, {"attempt_id": "b", "kind": "close"}])
    assert OutcomeJournal(tmp_path).pending_ids() == {"a", "b"}, "on disk for a new process"
    with pytest.raises(ValueError, match="attempt_id"):
        journal.append_all([{"attempt_id": "c", "kind": "close"}, {"kind": "close"}])
    assert journal.pending_ids() == {"a", "b"}, "a batch with a bad entry writes nothing"
    journal.done_all(["a", "b"])
    assert journal.path.read_text() == ""


def test_a_torn_last_line_is_skipped_and_the_next_entry_starts_a_new_line(tmp_path: Path) -> None:
    journal = OutcomeJournal(tmp_path)
    journal.append({"attempt_id": "a", "kind": "close"})
    with journal.path.open("ab") as fh:
        fh.write(b'{"attempt_id": "torn", "ki')  # the process died mid-write
    again = OutcomeJournal(tmp_path)
    assert again.pending_ids() == {"a"}
    again.append({"attempt_id": "c", "kind": "close"})
    assert again.pending_ids() == {"a", "c"}
    seen: list[str] = []
    report = again.replay(lambda e: seen.append(e["attempt_id"]))
    assert seen == ["a", "c"] and report.torn == 1 and report.left == 0


def test_replay_stops_at_an_outage_and_rejects_what_the_database_refuses(tmp_path: Path) -> None:
    journal = OutcomeJournal(tmp_path)
    for aid in ("ok", "bad", "later"):
        journal.append({"attempt_id": aid, "kind": "close"})
    down = {"later"}

    def apply(entry: dict[str, Any]) -> None:
        if entry["attempt_id"] == "bad":
            raise Rejected("attempt bad is not in the database")
        if entry["attempt_id"] in down:
            raise outage()

    report = journal.replay(apply)
    assert report.applied == ["ok"] and report.rejected == ["bad"] and report.left == 1
    assert journal.pending_ids() == {"later"}
    rejected = [json.loads(line) for line in journal.rejected_path.read_text().splitlines()]
    assert rejected == [
        {
            "entry": {"attempt_id": "bad", "kind": "close"},
            "reason": "Rejected: attempt bad is not in the database",
        }
    ]
    down.clear()
    assert journal.replay(apply).applied == ["later"] and not journal.pending_ids()


def test_replay_skips_outcomes_being_written_by_their_own_call(tmp_path: Path) -> None:
    journal = OutcomeJournal(tmp_path)
    journal.append({"attempt_id": "mine", "kind": "close"})
    journal.append({"attempt_id": "other", "kind": "close"})
    seen: list[str] = []
    journal.replay(lambda e: seen.append(e["attempt_id"]), skip={"mine"})
    assert seen == ["other"] and journal.pending_ids() == {"mine"}


def test_outage_errors_are_told_from_refusals() -> None:
    assert is_outage(outage())
    assert not is_outage(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(ValueError("bad outcome"))


# ------------------------------------------------------------------ the journal against the database


def _claimed_attempt(db: Database, settings: Settings) -> str:
    make_campaign(db, "0")
    with db.session() as session:
        campaign = svc.require_campaign(session, CAMPAIGN)
        [c] = claim(session, campaign, 1, NOW, node="fake")
    return c.attempt_id


def _worker(settings: Settings, db: Database) -> DialerWorker:
    return DialerWorker(settings, db, now=lambda: NOW, monotonic=Clock())


def _entry(attempt_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "close",
        "attempt_id": attempt_id,
        "attempt_no": 1,
        "contact_id": 0,
        "campaign": CAMPAIGN,
        "at": NOW.isoformat(),
        "facts": {
            "answered": True,
            "hangup_cause": 16,
            "amd_status": "HUMAN",
            "flow_outcome": "confirmed",
            "message_left": False,
        },
        "outcome": None,
        "digits": "1",
        "detail": {},
        "escalate": False,
        **extra,
    }


def test_a_journalled_outcome_is_written_exactly_once(settings: Settings, db: Database) -> None:
    attempt_id = _claimed_attempt(db, settings)
    w = _worker(settings, db)
    entry = _entry(attempt_id)
    w.journal.append(entry)
    w.journal.append(entry)  # the same outcome journalled twice (a retry after a crash)
    written = w._replay_now()
    assert [o for _e, o in written] == ["confirmed"]
    # The process died after the commit but before its done line: the entry comes back.
    w.journal.append(entry)
    assert w._replay_now() == [], "already closed: nothing written, nothing published again"
    with db.session() as session:
        attempt = session.get(Attempt, attempt_id)
        contact = session.scalars(select(Contact)).one()
        assert attempt is not None and attempt.state is AttemptState.ended
        assert attempt.outcome == "confirmed" and attempt.ended_at == NOW
        assert contact.attempts == 1 and contact.outcome_counts == {"confirmed": 1}
    assert not w.journal.pending_ids()


@pytest.mark.parametrize("batched", [False, True])
def test_a_journalled_outcome_replaces_an_interrupted_left_by_reconciliation(
    settings: Settings, db: Database, batched: bool
) -> None:
    """A worker cut from its database followed its calls to their end; meanwhile the node's new
    holder, finding no channel, closed them as `interrupted` (dialer/engine/takeover.py). The
    worker's journalled outcomes, written when its database is back, take their place, each
    counted once on its contact; a journalled `interrupted` changes nothing; replayed again, nothing."""
    make_campaign(db, "00")
    with db.session() as session:
        campaign = svc.require_campaign(session, CAMPAIGN)
        ids = [c.attempt_id for c in claim(session, campaign, 2, NOW, node="fake")]
    with db.session() as session:
        assert len(reconcile(session, "fake", [], NOW).closed) == 2
    w = _worker(settings, db)
    entries = [_entry(ids[0]), _entry(ids[1], outcome="interrupted")]
    if batched:  # the pass's batch (ledger.close_all), not the replay one by one
        w._apply_batch(entries)
    else:
        w.journal.append_all(entries)
        w._replay_now()
    w.journal.append(entries[0])
    assert w._replay_now() == [], "replayed again: nothing new"
    with db.session() as session:
        first, second = (session.get(Attempt, i) for i in ids)
        assert first is not None and second is not None
        assert (first.state, first.outcome) == (AttemptState.ended, "confirmed")
        assert (first.detail or {}).get("replaced") == "interrupted"
        assert (second.state, second.outcome) == (AttemptState.reconciled, "interrupted")
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        replaced, kept = contacts[first.contact_id], contacts[second.contact_id]
        assert (replaced.attempts, replaced.outcome_counts, replaced.state.value) == (
            1,
            {"confirmed": 1},
            "done",
        )
        assert (kept.attempts, kept.outcome_counts) == (1, {"interrupted": 1})


def test_outcomes_ending_together_share_one_fsynced_write(settings: Settings, db: Database) -> None:
    """Calls that end while the journal is being written go to disk together (one fsync), and
    each call goes on only once its own entry is on disk."""
    w = _worker(settings, db)
    batches: list[list[str]] = []
    append_all = w.journal.append_all

    def spy(entries: list[dict[str, Any]]) -> None:
        append_all(entries)
        batches.append([e["attempt_id"] for e in entries])

    w.journal.append_all = spy  # type: ignore[method-assign]
    ids = [f"call-{i}" for i in range(5)]

    async def end_together() -> None:
        async def one(aid: str) -> None:
            await w._journalled(_entry(aid))
            assert aid in OutcomeJournal(w.journal.path.parent).pending_ids(), "on disk before it goes on"

        await asyncio.gather(*(one(aid) for aid in ids))
        await w._journalled(_entry("later"))  # alone: written at once, nothing waits for a pass

    asyncio.run(end_together())
    assert batches == [ids, ["later"]]


def test_a_journal_that_cannot_be_written_fails_each_of_its_callers(settings: Settings, db: Database) -> None:
    w = _worker(settings, db)

    def broken(entries: list[dict[str, Any]]) -> None:
        raise OSError("disk full")

    w.journal.append_all = broken  # type: ignore[method-assign]

    async def end_together() -> list[BaseException | None]:
        return await asyncio.gather(
            *(w._journalled(_entry(f"c{i}")) for i in range(3)), return_exceptions=True
        )

    results = asyncio.run(end_together())
    assert [type(r) for r in results] == [OSError, OSError, OSError]
    assert not w._to_journal


def test_entries_the_database_refuses_go_to_the_rejected_file(settings: Settings, db: Database) -> None:
    attempt_id = _claimed_attempt(db, settings)
    w = _worker(settings, db)
    w.journal.append(_entry("no-such-attempt"))
    w.journal.append(_entry(attempt_id, outcome="not-an-outcome"))
    w.journal.append(_entry(attempt_id))
    assert [o for _e, o in w._replay_now()] == ["confirmed"]
    reasons = [json.loads(line)["reason"] for line in w.journal.rejected_path.read_text().splitlines()]
    # The bad entry for the attempt was superseded by the later one: only the unknown attempt is refused.
    assert reasons == ["Rejected: attempt no-such-attempt is not in the database"]
    w.journal.append(_entry(attempt_id + "x", outcome="not-an-outcome"))
    w._replay_now()
    assert "ValueError" in w.journal.rejected_path.read_text().splitlines()[-1]


def test_the_probe_sees_a_sqlite_file_locked_by_another_writer(db: Database, db_url: str) -> None:
    probe_database(db)  # up
    if not db_url.startswith("sqlite"):
        return  # PostgreSQL's outage is a refused connection: the lab test cuts it through a proxy
    import sqlite3

    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(OperationalError, match="locked"):
            probe_database(db)
        other.execute("ROLLBACK")
    finally:
        other.close()
    probe_database(db)


# ------------------------------------------------------------------ the watch


def test_the_watch_goes_down_probes_and_comes_back_on_its_clock() -> None:
    clock = Clock()
    fail = [True]
    changes: list[tuple[bool, str]] = []

    def probe() -> None:
        if fail[0]:
            raise outage()

    watch = DatabaseWatch(
        probe, monotonic=clock, probe_every=1.0, on_change=lambda up, r: changes.append((up, r))
    )
    assert watch.up and not watch.due()
    assert not watch.failed(IntegrityError("INSERT", {}, Exception("dup"))), "a refusal is no outage"
    assert watch.up
    assert watch.failed(outage()) and not watch.up and watch.outages == 1
    assert not watch.due(), "the first probe waits a second"
    clock.t += 1.0
    assert watch.due() and not watch.check() and not watch.up
    assert watch.failed(outage()) and watch.outages == 1, "one outage, however many errors"
    clock.t += 14.0
    assert watch.down_for() == 15.0 and watch.snapshot()["down_for_s"] == 15.0
    fail[0] = False
    assert watch.check() and watch.up and watch.longest_outage == 15.0
    assert [up for up, _ in changes] == [False, True] and "OperationalError" in changes[0][1]
    # Up, one failed probe is not an outage (it may have met our own write); two in a row are.
    fail[0] = True
    assert watch.check() and watch.up
    assert not watch.check() and not watch.up and watch.outages == 2


def test_the_fault_board_says_what_is_degraded(tmp_path: Path) -> None:
    clock = Clock()
    watch = DatabaseWatch(lambda: None, monotonic=clock)
    bus = [True]
    board = FaultBoard(
        tmp_path / "dialer" / "faults.json", watch, bus_connected=lambda: bus[0], now=lambda: NOW
    )
    assert board.write()["status"] == "ok"
    watch.failed(outage())
    bus[0] = False
    state = board.write()
    assert state["status"] == "degraded" and state["degraded"] == ["database", "bus"]
    assert state["new_calls_paused"]
    read = read_faults(tmp_path, now=NOW)
    assert read is not None and read["degraded"] == ["database", "bus"] and read["age_s"] == 0.0
    assert read_faults(tmp_path, now=NOW.replace(hour=5)) is None, "an old report: no dialer running"


# ------------------------------------------------------------------ a campaign through an outage


@pytest.fixture
def lab_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "asterisk_nodes": [NODE],
            "dialer_ring_timeout": 12,
            "dialer_tick": 1.0,
            "dialer_enabled": True,
        }
    )


class FlakyDatabase:
    """Makes `db` unreachable on demand: sessions and the watch's probe raise OperationalError."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.down = False
        self.real = db.session

        @contextmanager
        def session() -> Iterator[Session]:
            if self.down:
                raise outage()
            with self.real() as s:
                yield s
            if self.down:  # cut mid-transaction: the commit did not happen as far as we know
                raise outage()

        db.session = session  # type: ignore[method-assign]

    def probe(self) -> None:
        if self.down:
            raise outage()


class CapturingBus:
    """Stands in for core.bus.Bus in the worker: what it publishes, connected throughout."""

    connected = True
    pending = 0
    dropped = 0

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []

    async def publish(self, message: BusMessage) -> bool:
        self.messages.append(message)
        return True


async def run_through(w: DialerWorker, db: Database, fault: asyncio.Task[None]) -> None:
    """Run the worker until the fault is over and so is the campaign: idle, nothing left in the
    journal, every contact done."""
    async with asyncio.timeout(FINISH_WITHIN):
        await w.run(
            until=lambda: fault.done() and w.idle() and not w.journal.pending_ids() and campaign_over(db)
        )
    await fault


@pytest.mark.parametrize("outage_s", [15.0, 45.0])
def test_a_campaign_through_a_database_outage_loses_and_doubles_nothing(
    lab_settings: Settings, db: Database, outage_s: float
) -> None:
    make_campaign(db, "9" * 6 + "0" * 6 + "1" * 6)
    flaky = FlakyDatabase(db)
    seen: dict[str, Any] = {}
    bus = CapturingBus()

    async def main() -> DialerWorker:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        asterisk = FakeAsterisk(default=lab_callee)
        w = worker(lab_settings, db, asterisk, "worker")
        w.watch.probe = flaky.probe
        w.bus = bus  # type: ignore[assignment]

        async def cut() -> None:
            await until(lambda: in_flow(asterisk) >= 6, FINISH_WITHIN, interval=0.1)
            flaky.down = True
            seen["live"] = set(asterisk.channels)
            await until(lambda: not w.watch.up, 30, interval=0.1)
            seen["originates"] = len(asterisk.calls("originate"))
            resumed = loop.time() + outage_s
            if w.leases is not None and outage_s > w.leases.seconds:
                await until(lambda: w.leases is not None and w.leases.lost > 0, outage_s, interval=0.1)
                seen["up_at_loss"] = set(asterisk.channels) & seen["live"]
            await asyncio.sleep(resumed - loop.time())
            seen["originates_during"] = len(asterisk.calls("originate")) - seen["originates"]
            seen["pending"] = len(w.journal.pending_ids())
            flaky.down = False

        await run_through(w, db, asyncio.create_task(cut()))
        seen["asterisk"] = asterisk
        return w

    w = run_virtual(main())
    attempts = check_ledger(db)  # nobody lost, nothing doubled, every attempt closed once
    assert seen["originates_during"] == 0, "no new call while the database was away"
    assert seen["pending"] >= 1, "outcomes waited in the journal"
    # Live at the cut and hung up by us at any time after it (during the outage, at the lease's
    # loss or when the worker followed its node again): each with its real outcome, none cut off.
    hung_up_by_us = {r.target for r in seen["asterisk"].calls("hangup")} & seen["live"]
    finished = {a.id: a.outcome for a in attempts if a.id in hung_up_by_us}
    assert all(o != "interrupted" for o in finished.values()), finished
    assert w.watch.outages == 1 and w.watch.up
    # Past the lease (30 s) the worker stopped following its node and took it back afterwards.
    assert w.leases is not None and w.leases.lost == int(outage_s > lab_settings.dialer_lease_seconds)
    if w.leases.lost:
        assert seen["up_at_loss"], "calls were live when the lease ran out (what this case is about)"
    assert w.journal.replayed >= seen["pending"] and not w.journal.pending_ids()
    assert not set(a.id for a in attempts) & set(seen["asterisk"].channels), "no stray channel"
    # Supervisors hear of it: the retained health/dialer went degraded, then ok again.
    health = [(m.ok, m.detail) for m in bus.messages if isinstance(m, ServiceHealth)]
    assert (False, "degraded: database; new calls paused") in health and health[-1] == (True, "ok"), health
    # Every outcome reached the bus, the journalled ones after the replay.
    outcomes = [m for m in bus.messages if isinstance(m, CallEvent) and m.kind == "outcome"]
    assert sorted(m.call_id for m in outcomes) == sorted(a.id for a in attempts)
    assert sum(bool(m.detail.get("journal")) for m in outcomes) == seen["pending"]
    faults = read_faults(lab_settings.var_dir, now=w.now())
    assert faults is not None and faults["status"] == "ok" and faults["database"]["outages"] == 1


@pytest.mark.parametrize("restart", [False, True])
def test_calls_that_end_while_the_lease_is_lost_keep_their_outcome_unless_asterisk_restarted(
    lab_settings: Settings, db: Database, restart: bool
) -> None:
    """The worker's database away past its lease: it stops dialling but keeps following its own
    calls through its own Stasis app (dialer/engine/takeover.py), so a callee who hangs up meanwhile
    is heard: hung up by its callee, not cut (tests/integration/test_lease_lab.py once found five
    such calls closed as `interrupted`, when a lease gap was a gap in the node's events); if
    Asterisk restarted meanwhile, the calls it had were cut: interrupted."""
    settings = lab_settings.model_copy(update={"dialer_lease_seconds": 6.0})
    make_campaign(db, "9" * 4)  # they talk a minute: up until the test hangs them up
    flaky = FlakyDatabase(db)
    seen: dict[str, Any] = {}

    async def main() -> DialerWorker:
        asterisk = FakeAsterisk(default=lab_callee)
        w = worker(settings, db, asterisk, "worker")
        w.watch.probe = flaky.probe

        async def cut() -> None:
            await until(lambda: in_flow(asterisk) >= 4, FINISH_WITHIN, interval=0.1)
            flaky.down = True
            await until(lambda: w.leases is not None and w.leases.lost == 1, 30, interval=0.1)
            seen["live"] = set(asterisk.channels)
            if restart:
                asterisk.restart()
            else:
                for channel_id in seen["live"]:
                    asterisk.hangup_by_callee(channel_id)  # heard on the worker's own app
            await asyncio.sleep(0.5)
            flaky.down = False

        await run_through(w, db, asyncio.create_task(cut()))
        return w

    w = run_virtual(main())
    attempts = check_ledger(db)
    assert w.leases is not None and (w.leases.lost, w.leases.taken) == (1, 2)
    outcomes = {a.id: a.outcome for a in attempts if a.id in seen["live"]}
    assert len(outcomes) == 4, outcomes
    if restart:
        assert set(outcomes.values()) == {"interrupted"}, outcomes
    else:
        assert "interrupted" not in outcomes.values(), outcomes


# ------------------------------------------------------------------ the lab test's proxy


def _ended(sock: socket.socket) -> bool:
    try:
        return sock.recv(10) == b""
    except OSError:
        return True


def _echo(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := conn.recv(100):
            conn.sendall(data)


def test_the_tcp_proxy_cuts_and_restores() -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    with TcpProxy(server.getsockname()[:2]) as proxy:
        a = socket.create_connection((proxy.host, proxy.port), timeout=5)
        a.sendall(b"hi")
        assert a.recv(10) == b"hi"
        proxy.cut()
        assert _ended(a), "a cut connection ends"
        try:
            b = socket.create_connection((proxy.host, proxy.port), timeout=5)
        except OSError:
            pass  # reset before the handshake was seen
        else:
            assert _ended(b), "a new connection is refused while cut"
            b.close()
        proxy.restore()
        c = socket.create_connection((proxy.host, proxy.port), timeout=5)
        c.sendall(b"again")
        assert c.recv(10) == b"again"
        assert proxy.cuts == 1 and proxy.refused >= 1
        for sock in (a, c):
            sock.close()
    server.close()
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy(("10.0.0.1", 5432))


def test_a_journal_left_by_a_dead_worker_is_replayed_before_reconciliation(
    lab_settings: Settings, db: Database
) -> None:
    """The worker died with an outcome journalled but not written (the database was away): its
    successor writes that outcome, never closes the attempt as interrupted for want of a channel."""
    attempt_id = _claimed_attempt(db, lab_settings)
    OutcomeJournal(lab_settings.var_dir / "dialer").append(_entry(attempt_id))
    bus = CapturingBus()

    async def main() -> None:
        asterisk = FakeAsterisk(default=lab_callee)
        w = worker(lab_settings, db, asterisk, "worker")
        w.bus = bus  # type: ignore[assignment]
        async with asyncio.timeout(FINISH_WITHIN):
            await w.run(
                until=lambda: any(isinstance(m, CallEvent) for m in bus.messages) and campaign_over(db)
            )

    run_virtual(main())
    with db.session() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.state is AttemptState.ended and attempt.outcome == "confirmed"
        assert session.scalars(select(Contact)).one().attempts == 1
    assert [m.call_id for m in bus.messages if isinstance(m, CallEvent) and m.kind == "outcome"] == [
        attempt_id
    ]
