"""What a dialer pass costs when there is nothing to do (issue 13, the dialer's CPU per call).

A pass reads the running campaigns only when it may act on them (a claim due, a paced campaign,
agents' requests, once a second otherwise); Asterisk is asked not to send the event types no
feature reads, at every connection; the database is not probed while writes work.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.ari_events import UNUSED_EVENTS
from core.db import Database
from core.settings import Settings
from dialer.agent_dial import service as agent_dial
from dialer.engine import runtime
from dialer.engine.runtime import HEALTH_PROBE_EVERY, RUNNING_RECHECK, CampaignState
from dialer.models import Contact
from dialer.pacing import TokenBucket
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_dialer_faults import Clock
from tests.unit.test_reconcile_fake_ari import NODE, T0, SilentPromptCache, lab_callee, make_campaign, worker
from tests.utils import until


def test_a_pass_reads_the_running_campaigns_only_when_it_may_act(settings: Settings, db: Database) -> None:
    clock = Clock()
    w = runtime.DialerWorker(settings, db, monotonic=clock)
    assert w._reads_due(), "never read: the first pass reads"
    bucket = TokenBucket(10, clock=clock)
    bucket.take(10)  # a claim just took its tokens
    rated = CampaignState(spec=None, plan_key=(), flow=None, bucket=bucket)  # type: ignore[arg-type]
    w._running, w._running_at, w._asked_seen = [rated], clock(), agent_dial.asked_count()
    assert not w._reads_due(), "no claim due: no transaction"
    clock.t += 0.5  # CLAIM_SPAN's worth of tokens again
    assert w._reads_due(), "a claim is due: read first (a paused campaign starts no call)"
    w._running_at = clock()
    bucket.take(5)
    assert not w._reads_due()
    agent_dial.note_asked()
    assert w._reads_due(), "an agent in this process asked for a call"
    w._asked_seen = agent_dial.asked_count()
    assert not w._reads_due()
    clock.t += RUNNING_RECHECK
    bucket.take(bucket.available)
    assert w._reads_due(), "once a second whatever: a campaign started, another process's requests"
    w._running_at = clock()
    w._placed_waiting = True
    assert w._reads_due(), "agents' requests waited at the last read"


def test_asterisk_is_asked_not_to_send_the_events_nobody_reads(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)
    lab = settings.model_copy(update={"asterisk_nodes": [NODE], "dialer_enabled": True, "dialer_tick": 1.0})

    async def main() -> tuple[FakeAsterisk, list[str]]:
        asterisk = FakeAsterisk(default=lab_callee)
        only = worker(lab, db, asterisk, "worker")
        passes = itertools.count(1)

        def reconnected() -> bool:
            link = only.nodes[NODE.name]
            return link.connections >= 2 and link.ready and next(passes) > 2

        async def restart() -> None:
            await until(lambda: NODE.name in only.nodes and only.nodes[NODE.name].ready, 60, interval=0.5)
            asterisk.stop()  # Asterisk forgets the filter with everything else
            await asyncio.sleep(2.0)
            asterisk.start()

        restarting = asyncio.create_task(restart())
        await only.run(until=reconnected)
        await restarting
        # The fake delivers what Asterisk would: a filtered type is not sent to the app.
        listener = asterisk.client(NODE.app, "listener")
        await listener.filter_events(["ChannelVarset"])
        seen: list[str] = []
        events = listener.events()
        first = await anext(events)
        seen.append(first["type"])
        asterisk.emit({"type": "ChannelVarset", "variable": "X"}, apps=[NODE.app])
        asterisk.emit({"type": "ChannelStateChange"}, apps=[NODE.app])
        seen.append((await anext(events))["type"])
        await events.aclose()
        return asterisk, seen

    asterisk, seen = run_virtual(main())
    filters = [r for r in asterisk.calls("filter_events") if r.client == "worker"]
    by_app = Counter(f.path.split("/")[2] for f in filters)
    # The worker's own app and the node's shared one (dialer/engine/takeover.py): each set at the
    # first connection and again after Asterisk's restart (the shared one also once it connects).
    own = [app for app in by_app if app != NODE.app]
    assert len(own) == 1 and by_app[own[0]] == 2, by_app
    assert by_app[NODE.app] >= 2, by_app
    assert all(f.body == {"disallowed": [{"type": t} for t in UNUSED_EVENTS]} for f in filters)
    assert seen == ["WarmlineConnected", "ChannelStateChange"]


def test_no_database_probe_while_writes_work(settings: Settings, db: Database) -> None:
    clock = Clock()
    w = runtime.DialerWorker(settings, db, monotonic=clock)
    probes: list[float] = []
    w.watch.probe = lambda: probes.append(clock())

    async def passes() -> None:
        w.watch.succeeded()  # a claim or a batch of closes was written just now
        await w._watch_faults()
        assert probes == [], "a write that worked says as much as a probe"
        clock.t += HEALTH_PROBE_EVERY  # nothing written since (a locked database stops writes)
        await w._watch_faults()
        assert probes == [clock()]

    asyncio.run(passes())


def test_a_campaign_with_no_due_contact_costs_no_claim(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass's read says, with each running campaign, whether a contact of it is due: one with
    none (all due later, or called already) gets no claim's transaction, where it had one every
    second (issue 13, Round 7); once a contact is due, the next read finds it and it is called."""
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)
    make_campaign(db, "0")
    with db.session() as session:
        session.execute(update(Contact).values(next_due_at=T0 + timedelta(hours=1)))
    lab = settings.model_copy(update={"asterisk_nodes": [NODE], "dialer_enabled": True})
    claims: list[int] = []

    async def main(seconds: float | None) -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        w = worker(lab, db, FakeAsterisk(default=lab_callee), "worker")
        real = w._claim

        def counted(*args: Any, **kw: Any) -> Any:
            claims.append(1)
            return real(*args, **kw)

        w._claim = counted  # type: ignore[method-assign]
        t0 = loop.time()
        if seconds is None:
            await w.run(until=lambda: w.closed_calls >= 1)
        else:
            await w.run(until=lambda: loop.time() - t0 > seconds)
        return all(not state.has_due for state in w.campaigns.values()), w.closed_calls

    none_due, closed = run_virtual(main(5.0))
    assert none_due and closed == 0 and claims == [], "five seconds of passes, no claim"
    with db.session() as session:
        session.execute(update(Contact).values(next_due_at=None))
    _, closed = run_virtual(main(None))
    assert closed == 1 and claims, "a due contact is claimed and called"
