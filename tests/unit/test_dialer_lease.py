"""One dialer worker per Asterisk node (dialer/engine/lease.py, docs/faults.md): the lease's rules
on a clock the test sets, then two workers started against one fake Asterisk: the second waits
(never connects, never dials) while the first holds the node, and takes over -- adopting the
first one's live calls -- once it stops. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from core.db import Database
from core.settings import Settings
from dialer.engine.lease import give_up, holder_of, take
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
    from dialer.engine.lease import Leases

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
