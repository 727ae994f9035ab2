"""When the dialer's pass runs (issue 13, the dialer's CPU per call, Round 8).

A pass runs when something it serves is due or arrives, at most every `dialer_tick` and at least
every PASS_IDLE seconds: a worker with nothing due sleeps, where it ran a pass every tick; an
outcome journalled wakes it, so a close still reaches the database within a tick; a change
committed in this process (a campaign started, an agent's request) is acted on at the next pass,
not at the next once-a-second read. All on the virtual clock: the times compared are the loop's.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer import wake
from dialer.engine import runtime
from dialer.engine.runtime import BOARD_EVERY, PASS_IDLE, RUNNING_RECHECK, CampaignState, DialerWorker
from dialer.models import CampaignStatus, Contact
from dialer.pacing import TokenBucket
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_dialer_faults import Clock
from tests.unit.test_reconcile_fake_ari import (
    CAMPAIGN,
    NODE,
    T0,
    SilentPromptCache,
    lab_callee,
    make_campaign,
    worker,
)

EPSILON = 1e-6  # loop seconds: the virtual clock's float sums


@pytest.fixture
def lab(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)
    return settings.model_copy(update={"asterisk_nodes": [NODE], "dialer_enabled": True})


def _counted(w: DialerWorker, name: str, times: list[float]) -> None:
    """Note the loop's time each time the worker's coroutine method `name` starts."""
    real = getattr(w, name)
    loop = asyncio.get_running_loop()

    async def counted(*args: Any, **kw: Any) -> Any:
        times.append(loop.time())
        return await real(*args, **kw)

    setattr(w, name, counted)


def test_a_worker_with_nothing_due_passes_once_a_second(lab: Settings, db: Database) -> None:
    """Ten seconds with every contact due in an hour: about one pass a second (the running
    campaigns' read, the database probe), where a pass every dialer_tick made fifty."""
    make_campaign(db, "01")
    with db.session() as session:
        session.execute(update(Contact).values(next_due_at=T0 + timedelta(hours=1)))
    passes: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        w = worker(lab, db, FakeAsterisk(default=lab_callee), "worker")
        _counted(w, "_watch_faults", passes)
        t0 = loop.time()
        await w.run(until=lambda: loop.time() - t0 >= 10.0)

    run_virtual(main())
    assert lab.dialer_tick < PASS_IDLE
    assert 8 <= len(passes) <= 10 / PASS_IDLE + 3, passes
    gaps = [b - a for a, b in itertools.pairwise(passes[3:])]
    assert all(gap <= PASS_IDLE + EPSILON for gap in gaps), gaps


def test_a_journalled_outcome_wakes_the_pass_so_its_close_waits_no_longer_than_a_tick(
    lab: Settings, db: Database
) -> None:
    """The pass sleeps while a call is up (nothing else due); when the call ends its outcome is
    journalled and the pass woken: the batch is written within dialer_tick, as when a pass ran
    every tick."""
    make_campaign(db, "1")  # hears the question, hangs up 2.5 s into its wait
    passes: list[float] = []
    journalled: list[float] = []
    written: list[float] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        w = worker(lab, db, FakeAsterisk(default=lab_callee), "worker")
        _counted(w, "_watch_faults", passes)
        _counted(w, "_write_closes", written)
        real = w._journalled

        async def noted(entry: dict[str, Any]) -> None:
            await real(entry)
            journalled.append(loop.time())

        w._journalled = noted  # type: ignore[method-assign]
        t0 = loop.time()
        await w.run(until=lambda: w.closed_calls >= 1)
        return t0

    t0 = run_virtual(main())
    assert len(journalled) == 1 and written, (journalled, written)
    assert written[0] - journalled[0] <= lab.dialer_tick + EPSILON, (journalled, written)
    call_seconds = journalled[0] - t0
    assert call_seconds > 4.0, call_seconds
    assert len(passes) <= call_seconds / PASS_IDLE + 6, "the pass slept while the call was up"
    assert len(passes) < call_seconds / lab.dialer_tick / 2, passes


def test_a_campaign_started_in_this_process_is_dialled_at_the_next_pass(lab: Settings, db: Database) -> None:
    """The API's and the console's status change wake the workers here (dialer.wake): the next
    pass, within dialer_tick, reads the running campaigns again and claims, where the once-a-second
    read would have come up to a second later."""
    make_campaign(db, "0")
    with db.session() as session:
        svc.set_status(session, CAMPAIGN, CampaignStatus.paused, actor="t")
    claims: list[float] = []
    changed: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        w = worker(lab, db, FakeAsterisk(default=lab_callee), "worker")
        real_tick = w.tick
        real_claim = w._claim

        async def tick() -> int:
            started = await real_tick()
            if not changed and loop.time() - t0 > 3.0:  # just after a pass: its read is fresh
                with db.session() as session:
                    svc.set_status(session, CAMPAIGN, CampaignStatus.running, actor="t")
                changed.append(loop.time())
                wake.wake()  # what dialer.api and the console do after the commit
            return started

        def claim(*args: Any, **kw: Any) -> Any:
            claims.append(loop.time())
            return real_claim(*args, **kw)

        w.tick = tick  # type: ignore[method-assign]
        w._claim = claim  # type: ignore[method-assign]
        t0 = loop.time()
        await w.run(until=lambda: w.closed_calls >= 1)

    run_virtual(main())
    assert changed and claims, (changed, claims)
    assert claims[0] - changed[0] <= lab.dialer_tick + EPSILON, (changed, claims)


def test_the_rest_between_passes_ends_at_the_first_thing_due(settings: Settings, db: Database) -> None:
    clock = Clock()
    w = DialerWorker(settings, db, monotonic=clock)
    w._running_at, w._board_at = clock(), clock()
    assert w._due_in() == PASS_IDLE, "nothing due: the longest rest"
    w._running_at = clock() - RUNNING_RECHECK + 0.3
    assert w._due_in() == pytest.approx(0.3), "the running campaigns' read"
    w._running_at = clock()
    w._board_at = clock() - BOARD_EVERY + 0.4
    assert w._due_in() == pytest.approx(0.4), "the fault board"
    w._board_at = clock()
    bucket = TokenBucket(10, clock=clock)
    bucket.take(10)
    rated = CampaignState(spec=None, plan_key=(), flow=None, bucket=bucket)  # type: ignore[arg-type]
    w._running = [rated]
    assert w._due_in() == PASS_IDLE, "no node ready: no claim (its reconciliation wakes the pass)"
    w._node_free_in = lambda now: 0.0  # type: ignore[method-assign]
    assert w._due_in() == pytest.approx(0.5), "CLAIM_SPAN's worth of tokens: a claim is due"
    rated.drained_until = clock() + 0.8
    assert w._due_in() == pytest.approx(0.8), "drained: looked at again after DRAINED_RECHECK"
    rated.error = "flow not found"
    assert w._due_in() == PASS_IDLE, "a campaign that cannot dial"
    rated.error, rated.pace = None, object()  # type: ignore[assignment]
    assert w._due_in() == 0.0, "a paced campaign's pacer decides each pass"
    rated.pace = None
    w._placed_waiting = True
    assert w._due_in() == 0.0, "agents' requests wait"


def test_a_wake_ends_the_rest_no_sooner_than_a_tick_after_the_pass_began(
    settings: Settings, db: Database
) -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        w = DialerWorker(settings, db, monotonic=loop.time)
        w._running_at, w._board_at = loop.time(), loop.time()
        started = loop.time()
        slept = asyncio.ensure_future(w._rest(started))
        await asyncio.sleep(settings.dialer_tick / 4)
        w._wake_pass()  # an outcome journalled
        await slept
        woke = loop.time() - started
        started, w._wake_due = loop.time(), False  # as a pass begins
        w._running_at, w._board_at = started, started  # and reads, and writes the board
        await w._rest(started)  # nothing: the longest rest
        return woke, loop.time() - started

    woke, idle = run_virtual(main())
    assert woke == pytest.approx(settings.dialer_tick)
    assert idle == pytest.approx(PASS_IDLE)
