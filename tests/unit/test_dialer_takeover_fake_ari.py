"""Two dialer workers on one fake Asterisk node (issue 13; dialer/engine/takeover.py), on a virtual
clock, SQLite and PostgreSQL.

The first worker holds the node's lease and has calls up when its database is cut (its own
`Database`, made unreachable; the second worker's is fine): it loses the lease, the second takes the
node. Then:

- the second leaves the first's calls alone while the first lives (its heartbeat on Asterisk goes
  on): it neither hangs them up nor follows them;
- the first follows its calls to their end through its own Stasis app and journals their outcomes
  while its database is away;
- a call that ended before the second took the node (no channel left: reconciliation closes it as
  `interrupted`) gets the first worker's real outcome once its database is back, counted once;
- when the first dies while the second watches its calls, the second adopts them: the calls still in
  AMD come back into the dead worker's app, now the second's, and are followed to their real end.

What tests/integration/test_lease_lab.py proves on the real Asterisk in minutes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from core.db import Database
from core.settings import Settings
from dialer.engine.runtime import DialerWorker
from dialer.engine.takeover import BEAT_EVERY, dead_look
from dialer.models import Attempt, AttemptState, Contact
from tests.fakes.ari import Callee, FakeAri, FakeAsterisk, confirms
from tests.fakes.clock import run_virtual
from tests.unit.test_dialer_faults import FlakyDatabase
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - silent_prompts is an autouse fixture
    CAMPAIGN,
    FINISH_WITHIN,
    LAB_CALLEES,
    NODE,
    T0,
    campaign_over,
    check_ledger,
    in_flow,
    lab_settings,
    silent_prompts,
)
from tests.utils import until
from tests.utils.campaigns import make_running_campaign

LEASE = 6.0  # seconds: the first worker, cut off, loses the node 5.4 s into the cut
# 9: talks a minute (up through the takeover); 6: answers, AMD takes 40 s, then confirms with 1.
CALLEES: dict[str, Callee] = {**LAB_CALLEES, "6": confirms("1", amd_seconds=40.0)}


def callee(endpoint: str) -> Callee:
    return CALLEES[endpoint.split("/", 1)[1].split("@", 1)[0][-1]]


def in_amd(asterisk: FakeAsterisk) -> int:
    return sum(c.app_name == "AMD" for c in asterisk.channels.values())


@dataclass
class Takeover:
    asterisk: FakeAsterisk
    first: DialerWorker
    second: DialerWorker
    live: set[str] = field(default_factory=set)  # the first worker's calls up at the cut
    early: set[str] = field(default_factory=set)  # of them, ended by their callee before the takeover
    seen: dict[str, Any] = field(default_factory=dict)
    attempts: dict[str, Attempt] = field(default_factory=dict)  # the ledger at the end (checked)

    def hung_up_by_second(self, upto: int | None = None) -> set[str]:
        requests = self.asterisk.requests[:upto]
        return {str(r.target) for r in requests if r.client == "worker-2" and r.op == "hangup"} & self.live

    def outcomes(self, db: Database) -> dict[str, tuple[AttemptState, str | None, dict[str, Any]]]:
        with db.session() as session:
            rows = session.execute(select(Attempt.id, Attempt.state, Attempt.outcome, Attempt.detail))
            return {i: (s, o, d or {}) for i, s, o, d in rows if i in self.live}


def run_takeover(
    settings: Settings, db: Database, tmp: Path, *, early: int = 0, kill: bool = False, stall: float = 0.0
) -> Takeover:
    """The first worker's database is cut with its calls up; the second takes the node. With
    `early`, that many of the first's talking calls are hung up by their callee at the cut (before
    the takeover); with `kill`, the first worker dies once the second watches its calls; with
    `stall`, it stalls that many seconds then (its ARI requests, heartbeat included, hang)."""

    async def main() -> Takeover:
        loop = asyncio.get_running_loop()
        started = loop.time()
        asterisk = FakeAsterisk(default=callee)
        db1 = Database(db.url)  # the first worker's own line to the database, cut by the test
        flaky = FlakyDatabase(db1)

        def make(name: str, database: Database) -> DialerWorker:
            mine = settings.model_copy(update={"dialer_lease_seconds": LEASE, "var_dir": tmp / name})
            return DialerWorker(
                mine,
                database,
                now=lambda: T0 + timedelta(seconds=loop.time() - started),  # one clock for both
                monotonic=loop.time,
                campaigns={CAMPAIGN},
                ari_factory=lambda node, _settings: asterisk.client(node.app, name),
            )

        run = Takeover(asterisk, make("worker-1", db1), make("worker-2", db))
        first, second = run.first, run.second
        first.watch.probe = flaky.probe
        one = asyncio.create_task(first.run())
        amd = 3 if kill else 2 if stall else 0
        await until(lambda: in_flow(asterisk) >= 3 and in_amd(asterisk) >= amd, FINISH_WITHIN)
        two = asyncio.create_task(second.run())
        await until(lambda: second.leases is not None and second.leases.waited >= 1, FINISH_WITHIN)
        run.live = set(asterisk.channels)
        flaky.down = True
        talking = sorted(c.id for c in asterisk.channels.values() if c.stasis_args[:1] == ["amd"])
        run.early = set(talking[:early])
        for channel_id in run.early:
            asterisk.hangup_by_callee(channel_id)
        link = second.nodes[NODE.name]
        await until(lambda: link.ready, FINISH_WITHIN)
        foreign = getattr(link, "foreign", {})  # (the old code had none: its checks still run)
        run.seen["left_to"] = {app: set(ids) for app, ids in foreign.items()}
        run.seen["first_app"] = first.nodes[NODE.name].ari.app
        if kill:  # SIGKILL: nothing the first does reaches Asterisk or the database any more
            run.seen["requests_at_death"] = len(asterisk.requests)
            for first_link in first.nodes.values():
                assert isinstance(first_link.ari, FakeAri)
                first_link.ari.kill()
            one.cancel()
            await asyncio.gather(one, return_exceptions=True)
        if stall:
            run.seen["requests_at_stall"] = len(asterisk.requests)
            first_ari = first.nodes[NODE.name].ari
            assert isinstance(first_ari, FakeAri)
            first_ari.stall(stall)
        await until(lambda: not run.live & set(asterisk.channels), FINISH_WITHIN)
        run.seen["journalled"] = first.journal.pending_ids() & run.live
        run.seen["before_restore"] = await asyncio.to_thread(run.outcomes, db)
        flaky.down = False
        # (a database query a poll: one a second at most)
        done = lambda: not first.journal.pending_ids() and campaign_over(db)  # noqa: E731
        await until(done, FINISH_WITHIN, interval=0.1, max_interval=1.0)
        await until(second.idle, FINISH_WITHIN)
        for task in (one, two):
            task.cancel()
        await asyncio.gather(one, two, return_exceptions=True)
        return run

    return run_virtual(main())


def make_campaign(db: Database, digits: str, *, retry_seconds: int = 600) -> None:
    """Due at once; by default retried 10 minutes after `interrupted`: nobody called again while
    the first worker's outcomes wait in its journal."""
    make_running_campaign(db, CAMPAIGN, digits, retry_seconds=retry_seconds)
    with db.session() as session:
        session.execute(update(Contact).values(next_due_at=None))


_RUNS: dict[str, Takeover] = {}  # one cut-off run per database kind, for the three tests reading it


@pytest.fixture
def cut_off(lab_settings: Settings, db: Database, tmp_path: Path) -> Takeover:  # noqa: F811
    """The first worker cut off with 5 calls talking, 2 of them ended by their callee at the cut;
    run once per database kind (a few seconds of CPU), the ledger as it ended kept with it."""
    kind = db.engine.dialect.name
    if kind not in _RUNS:
        make_campaign(db, "9" * 5)
        run = run_takeover(lab_settings, db, tmp_path, early=2)
        run.attempts = {a.id: a for a in check_ledger(db)}
        _RUNS[kind] = run
    return _RUNS[kind]


def test_a_live_workers_calls_are_left_to_it_by_the_new_holder(cut_off: Takeover) -> None:
    run = cut_off
    assert run.first.leases is not None and run.first.leases.lost == 1
    assert run.second.leases is not None and run.second.leases.taken == 1
    up = run.live - run.early
    assert len(up) >= 3
    assert not run.hung_up_by_second(), "the second worker hung up none of the first's calls"
    subscribed = {r.target for r in run.asterisk.calls("subscribe") if r.client == "worker-2"}
    assert not subscribed & run.live, "nor followed any of them"
    # The new holder found them on the first worker's app, whose heartbeat went on: left to it.
    assert run.seen["left_to"] == {run.seen["first_app"]: up}
    attempts = run.attempts
    assert all(attempts[i].outcome != "interrupted" for i in up), {i: attempts[i].outcome for i in up}


def test_a_worker_that_lost_the_lease_follows_its_calls_to_their_end_and_journals_them(
    cut_off: Takeover,
) -> None:
    run = cut_off
    up = run.live - run.early
    # Its database still away when the last of them ended: every outcome waited in its journal.
    assert run.seen["journalled"] == run.live
    assert all(run.seen["before_restore"][i][0] not in (AttemptState.ended,) for i in up)
    attempts = run.attempts
    for attempt_id in up:
        attempt = attempts[attempt_id]
        assert attempt.state is AttemptState.ended and attempt.hangup_cause == 16, attempt_id
        assert not (attempt.detail or {}).get("resumed"), "followed by the worker that placed it"
    assert run.first.journal.replayed >= len(run.live)


def test_a_journalled_outcome_replaces_reconciliations_interrupted(cut_off: Takeover) -> None:
    run = cut_off
    assert len(run.early) == 2
    # No channel left when the second worker reconciled: closed as interrupted...
    before = run.seen["before_restore"]
    assert all(before[i][:2] == (AttemptState.reconciled, "interrupted") for i in run.early), before
    # ... until the first worker's real outcome, from its journal, took its place, counted once.
    attempts = run.attempts
    for attempt_id in run.early:
        attempt = attempts[attempt_id]
        assert attempt.state is AttemptState.ended and attempt.outcome != "interrupted", attempt.outcome
        assert (attempt.detail or {}).get("replaced") == "interrupted"


def test_a_dead_workers_calls_are_adopted_and_closed(
    lab_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Database,
    tmp_path: Path,
) -> None:
    make_campaign(db, "9" * 3 + "6" * 3, retry_seconds=20)  # the cut ones are called again
    run = run_takeover(lab_settings, db, tmp_path, kill=True)
    app = run.seen["first_app"]
    assert not run.hung_up_by_second(run.seen["requests_at_death"]), "none cut while it lived"
    assert run.seen["left_to"].get(app), "the first worker's calls were left to it while it lived"
    # Once dead, its app is the second worker's: the calls in AMD came back into it.
    assert any(c.app == app and c.name == "worker-2" for c in run.asterisk._clients)
    attempts = {a.id: a for a in check_ledger(db)}
    left = {i: attempts[i] for i in run.live}
    assert all(a.state in (AttemptState.ended, AttemptState.reconciled) for a in left.values())
    confirmed = [a for a in left.values() if a.outcome == "confirmed"]
    assert len(confirmed) == 3 and all((a.detail or {}).get("resumed") for a in confirmed), {
        i: (a.outcome, a.detail) for i, a in left.items()
    }
    assert not set(attempts) & set(run.asterisk.channels), "no channel left up"


def test_a_stalled_workers_calls_adopted_are_followed_by_the_adopter_alone(
    lab_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Database,
    tmp_path: Path,
) -> None:
    """The first worker, alive, stalls past the heartbeat look (its ARI hangs): the holder takes it
    for dead and adopts its app; Asterisk gives the app to the newer websocket and tells the first
    (ApplicationReplaced). The first gives its calls up untouched and never takes the app back."""
    look = dead_look(lab_settings.dialer_ari_timeout)
    assert look >= lab_settings.dialer_ari_timeout + 3 * BEAT_EVERY
    make_campaign(db, "9" * 3 + "6" * 2, retry_seconds=20)
    run = run_takeover(lab_settings, db, tmp_path, early=1, stall=look + 1.0)
    app = run.seen["first_app"]
    asterisk = run.asterisk
    # Adopted once, from the stalled worker, and never taken back.
    assert [(a, old, new) for a, old, new, _ in asterisk.replacements] == [(app, "worker-1", "worker-2")]
    owners = {c.name for c in asterisk._clients if c.app == app and c.connected}
    assert owners <= {"worker-2"}
    assert not run.hung_up_by_second(run.seen["requests_at_stall"]), "none cut while it lived"
    # From the replacement on, the first worker touched none of the calls: no call followed by both.
    at = asterisk.replacements[0][3]
    touched = {str(r.target) for r in asterisk.requests[at:] if r.client == "worker-1"} & run.live
    assert not touched, [(r.op, r.target) for r in asterisk.requests[at:] if r.client == "worker-1"]
    assert not run.first.nodes[NODE.name].calls and not run.first.nodes[NODE.name].followed.tasks
    assert run.first.nodes[NODE.name].followed.dropped == len(run.live - run.early)
    # Every attempt closed once (check_ledger) with its true outcome, by the adopter (resumed): a
    # call in AMD comes back into the adopted app and is followed to its end; one already in its
    # flow lost the flow that drove it (dialer.engine.calls `_adopt`): hung up as interrupted. The
    # one ended before the stall keeps the first worker's journalled outcome, replayed.
    attempts = {a.id: a for a in check_ledger(db)}
    outcomes = {i: (attempts[i].outcome, attempts[i].detail) for i in run.live}
    for attempt_id in run.live - run.early:
        attempt = attempts[attempt_id]
        assert attempt.state is AttemptState.ended, outcomes
        assert (attempt.detail or {}).get("resumed"), outcomes
        assert attempt.outcome in ("confirmed", "interrupted"), outcomes
    confirmed = [i for i in run.live if attempts[i].outcome == "confirmed"]
    assert len(confirmed) == 2
    for attempt_id in run.early:
        attempt = attempts[attempt_id]
        assert attempt.state is AttemptState.ended and attempt.hangup_cause == 16, attempt.outcome
        assert not (attempt.detail or {}).get("resumed")
    assert not set(attempts) & set(asterisk.channels), "no channel left up"


def test_a_short_stall_is_not_taken_for_death(
    lab_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Database,
    tmp_path: Path,
) -> None:
    """A 4 s stall (its heartbeat unchanged longer than the old 3 s look) is not death: its calls
    stay its own, followed by it to their end; nobody opens its app."""
    make_campaign(db, "9" * 3 + "6" * 2, retry_seconds=20)
    run = run_takeover(lab_settings, db, tmp_path, stall=4.0)
    assert run.asterisk.replacements == []
    assert run.seen["left_to"].get(run.seen["first_app"])
    assert not run.hung_up_by_second()
    attempts = {a.id: a for a in check_ledger(db)}
    for attempt_id in run.live:
        attempt = attempts[attempt_id]
        assert attempt.state is AttemptState.ended and attempt.outcome != "interrupted", attempt.outcome
        assert not (attempt.detail or {}).get("resumed"), "followed by the worker that placed it"
    assert not set(attempts) & set(run.asterisk.channels), "no channel left up"
