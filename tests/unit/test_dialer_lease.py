"""One dialer worker per Asterisk node (dialer/engine/lease.py, docs/faults.md): the lease's rules
on a clock the test sets, then two workers started against one fake Asterisk: the second waits
(never connects, never dials) while the first holds the node, and takes over -- adopting the
first one's live calls -- once it stops. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from core.db import Database
from core.settings import Settings
from dialer.engine.lease import Leases, give_up, holder_of, take
from dialer.engine.runtime import DialerWorker
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - fixtures used by name
    CAMPAIGN,
    FINISH_WITHIN,
    NODE,
    T0,
    campaign_over,
    check_ledger,
    in_flow,
    lab_callee,
    lab_settings,
    make_campaign,
    silent_prompts,
)
from tests.utils import until

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_the_lease_is_held_by_one_worker_at_a_time(db: Database) -> None:
    def go(holder: str, at: float) -> bool:
        with db.session() as session:
            return take(session, "lab", holder, NOW + timedelta(seconds=at), 30)

    assert go("a", 0)
    assert not go("b", 1), "held by a"
    assert go("a", 20), "renewed by its holder"
    assert not go("b", 49), "renewed until 50"
    assert go("b", 50.5), "ran out: taken over"
    assert not go("a", 51), "a lost it"
    with db.session() as session:
        assert holder_of(session, "lab", NOW + timedelta(seconds=52)) == "b"
        give_up(session, "lab", "a")  # not a's to give
    with db.session() as session:
        assert holder_of(session, "lab", NOW + timedelta(seconds=52)) == "b"
        give_up(session, "lab", "b")
    with db.session() as session:
        assert holder_of(session, "lab", NOW + timedelta(seconds=52)) is None
    assert go("a", 53), "given back: free at once"


def test_a_second_worker_waits_then_takes_over(lab_settings: Settings, db: Database) -> None:  # noqa: F811
    make_campaign(db, "9" * 6 + "0" * 6)

    async def main() -> tuple[FakeAsterisk, int, int, DialerWorker]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        asterisk = FakeAsterisk(default=lab_callee)

        def make(name: str) -> DialerWorker:
            return DialerWorker(
                lab_settings,
                db,
                now=lambda: T0 + timedelta(seconds=loop.time() - started),  # one clock for both
                monotonic=loop.time,
                campaigns={CAMPAIGN},
                ari_factory=lambda node, _settings: asterisk.client(node.app, name),
            )

        first, second = make("worker-1"), make("worker-2")
        one = asyncio.create_task(first.run())
        await until(lambda: in_flow(asterisk) >= 4, FINISH_WITHIN, interval=0.1)
        two = asyncio.create_task(second.run(until=lambda: second.idle() and campaign_over(db)))
        await until(
            lambda: second.leases is not None and second.leases.waited >= 3, FINISH_WITHIN, interval=0.1
        )
        by_second_while_waiting = len([r for r in asterisk.requests if r.client == "worker-2"])
        connected_while_waiting = sum(c.name == "worker-2" for c in asterisk.connected)
        one.cancel()  # the first stops mid-campaign; its lease is given back
        await asyncio.gather(one, return_exceptions=True)
        async with asyncio.timeout(FINISH_WITHIN):
            await two
        return asterisk, by_second_while_waiting, connected_while_waiting, second

    asterisk, requests_waiting, connected_waiting, second = run_virtual(main())
    assert requests_waiting == 0 and connected_waiting == 0, "the waiting worker neither dials nor listens"
    check_ledger(db)
    originated = [r.params["channelId"] for r in asterisk.calls("originate")]
    assert len(originated) == len(set(originated)), "no attempt dialled twice"
    assert {r.client for r in asterisk.calls("originate")} == {"worker-1", "worker-2"}
    assert not set(asterisk.channels), "no channel left up"
    assert second.leases is not None and second.leases.held == set(), "given back when it stopped"


def test_a_holder_that_lost_its_lease_stops_keeping_it(db: Database) -> None:
    """The holder could not renew in time (stalled); another worker took the node: `keep` returns
    (the worker then stops dialling there) instead of renewing over the new holder."""

    async def main() -> tuple[set[str], set[str], str | None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        clock = {"skew": 0.0}

        def now() -> datetime:
            return NOW + timedelta(seconds=loop.time() - started + clock["skew"])

        a = Leases(db, 30, now=now, holder="a")
        b = Leases(db, 30, now=now, holder="b")
        await a.wait_for("lab")
        keeping = asyncio.create_task(a.keep("lab"))
        await asyncio.sleep(1)
        clock["skew"] = 45.0  # a stalled past its lease (its renewals did not run): b takes over
        with db.session() as session:
            assert take(session, "lab", "b", now(), 30)
        b.held.add("lab")
        async with asyncio.timeout(60):
            await keeping
        with db.session() as session:
            holder = holder_of(session, "lab", now())
        return a.held, b.held, holder

    a_held, b_held, holder = run_virtual(main())
    assert a_held == set() and b_held == {"lab"} and holder == "b"


class OutageLeases(Leases):
    """Leases whose database refuses every write between `down` and `up` (loop seconds)."""

    def __init__(self, db: Database, *, down: float, up: float, **kw: Any) -> None:
        super().__init__(db, 30, **kw)
        self.down, self.up = down, up

    async def _take(self, node: str) -> bool:
        if self.down <= asyncio.get_running_loop().time() - STARTED["at"] < self.up:
            raise OperationalError("UPDATE dialer_node_leases", {}, ConnectionResetError("cut"))
        return await super()._take(node)


STARTED: dict[str, float] = {}


def keep_through(db: Database, down: float, up: float) -> tuple[set[str], str | None, float]:
    """Hold the node, cut the database from `down` to `up` seconds, run to 60 s: what is held."""

    async def main() -> tuple[set[str], str | None, float]:
        loop = asyncio.get_running_loop()
        STARTED["at"] = loop.time()

        def now() -> datetime:
            return NOW + timedelta(seconds=loop.time() - STARTED["at"])

        a = OutageLeases(db, down=down, up=up, now=now, holder="a")
        await a.wait_for("lab")
        keeping = asyncio.create_task(a.keep("lab"))
        done, _ = await asyncio.wait([keeping], timeout=60)
        gave_up_at = loop.time() - STARTED["at"] if done else -1.0
        keeping.cancel()
        with db.session() as session:
            return a.held, holder_of(session, "lab", now()), gave_up_at

    return run_virtual(main())


def test_a_database_outage_shorter_than_the_lease_costs_the_holder_nothing(db: Database) -> None:
    """Issue 13's 15 s outage, at every phase against the renewals (every 10 s): the holder tries
    again each second and keeps the node (it gave it up after two refused renewals, fresh run 3)."""
    for down in (0.5, 9.5, 10.5, 15.0):
        held, holder, gave_up_at = keep_through(db, down, down + 15.0)
        assert (held, holder, gave_up_at) == ({"lab"}, "a", -1.0), down


def test_a_holder_stops_just_before_its_lease_runs_out(db: Database) -> None:
    """Away past the lease: the holder stops before another worker may take the node (30 s after
    the last renewal, 10 s in), keeping a tenth of the lease as margin."""
    held, _holder, gave_up_at = keep_through(db, 10.5, 100.0)
    assert held == set()
    assert 10.0 + 30 - 3 <= gave_up_at <= 10.0 + 30, gave_up_at
