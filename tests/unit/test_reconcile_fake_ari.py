"""Crash safety bookkeeping with a fake Asterisk and a real database (SQLite and PostgreSQL).

What tests/integration/test_dialer_crash.py proves in minutes against the lab, proved here in
seconds on a virtual clock: a DialerWorker stopped or killed mid-campaign, and a new one started
against the same Asterisk, adopts or closes every live attempt; an Asterisk restart cuts calls
that are then retried. Afterwards every contact is finished, the contacts' counters sum to the
ledger's rows, no attempt number is used twice, every attempt is closed, and no retry came before
its delay. The callees behave as the lab's do (config/asterisk/extensions.conf, by last digit).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import select, update

from core.db import Database
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.engine import runtime
from dialer.engine.ledger import LIVE_STATES
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState
from tests.fakes.ari import NO_ANSWER, Callee, FakeAri, FakeAsterisk, confirms
from tests.fakes.clock import VirtualTimeLoop, run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.utils import until
from tests.utils.campaigns import make_running_campaign

RETRY_SECONDS = 20
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # the dialer's clock at the start: a Monday, 10:00 in Shanghai
CAMPAIGN = "crash"
NODE = AsteriskNode(name="fake", ari_password="unused: the fake takes any")
FINISH_WITHIN = 3600.0  # loop seconds; a safety net, the campaigns take a few hundred

# The lab's callees by the number's last digit (6, the agent, is left out: no hand-over here).
LAB_CALLEES: dict[str, Callee] = {
    "0": confirms("1", answer_after=2.0),
    "1": Callee(hangup_on="prompt", hangup_prompt=2, hangup_after=2.5),  # hears the question, hangs up
    "2": NO_ANSWER,
    "3": Callee(refuse=17),
    "4": Callee(refuse=34),
    "5": Callee(amd="MACHINE"),
    "7": confirms("9"),
    "8": Callee(answer_after=0.0, hangup_on="answer"),
    "9": Callee(hangup_on="answer", hangup_after=60.0),  # talks a minute, presses nothing
}


def lab_callee(endpoint: str) -> Callee:
    number = endpoint.split("/", 1)[1].split("@", 1)[0]
    return LAB_CALLEES[number[-1]]


class SilentPromptCache:
    """Stands in for ivr.tts.PromptCache in the worker: what TTS says is not under test here."""

    @staticmethod
    def for_var_dir(var_dir: Path, *args: Any, **kw: Any) -> SilentPrompts:
        return SilentPrompts(var_dir / "prompts")

    @staticmethod
    def for_settings(settings: Any, *args: Any, **kw: Any) -> SilentPrompts:
        return SilentPrompts(settings.var_dir / "prompts")


@pytest.fixture(autouse=True)
def silent_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)


@pytest.fixture
def lab_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "asterisk_nodes": [NODE],
            "dialer_ring_timeout": 12,
            "dialer_tick": 1.0,  # a pass a second: retries are 20 s apart, finer adds only database work
            "dialer_enabled": True,
        }
    )


def make_campaign(db: Database, digits: str) -> None:
    """The lab test's campaign, due at once on the dialer's clock (T0, not the machine's)."""
    make_running_campaign(db, CAMPAIGN, digits, retry_seconds=RETRY_SECONDS)
    with db.session() as session:
        session.execute(update(Contact).values(next_due_at=None))


# ------------------------------------------------------------------ reading the ledger


def live_attempts(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Attempt.id).where(Attempt.state.in_(LIVE_STATES))))


def campaign_over(db: Database) -> bool:
    with db.session() as session:
        open_contacts = session.scalar(
            select(Contact.id)
            .where(Contact.state.in_((ContactState.pending, ContactState.in_progress)))
            .limit(1)
        )
        live = session.scalar(select(Attempt.id).where(Attempt.state.in_(LIVE_STATES)).limit(1))
    return open_contacts is None and live is None


def check_ledger(db: Database) -> list[Attempt]:
    """Every contact finished and called; counters and ledger agree; attempts numbered 1..n, all
    closed with an outcome; each retry no sooner than the delay after the attempt before it."""
    with db.session() as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        attempts = list(session.scalars(select(Attempt).order_by(Attempt.contact_id, Attempt.attempt_no)))
    assert all(c.state in (ContactState.done, ContactState.exhausted) for c in contacts.values()), [
        (c.phone_e164, c.state) for c in contacts.values()
    ]
    assert sum(c.attempts for c in contacts.values()) == len(attempts)
    by_contact: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_contact.setdefault(a.contact_id, []).append(a)
    assert set(by_contact) == set(contacts), "nobody lost: every contact was called"
    for cid, mine in by_contact.items():
        assert [a.attempt_no for a in mine] == list(range(1, len(mine) + 1))
        assert contacts[cid].attempts == len(mine)
        for a in mine:
            assert a.state in (AttemptState.ended, AttemptState.reconciled) and a.outcome, a.id
        for before, after in itertools.pairwise(mine):
            assert before.ended_at is not None
            assert after.created_at >= before.ended_at + timedelta(seconds=RETRY_SECONDS), (
                before.id,
                after.id,
            )
    return attempts


# ------------------------------------------------------------------ running workers


def in_flow(asterisk: FakeAsterisk) -> int:
    """Calls past AMD, in the IVR flow."""
    return sum(c.stasis_args[:1] == ["amd"] for c in asterisk.channels.values())


@dataclass
class Run:
    asterisk: FakeAsterisk
    live_at_crash: set[str] = field(default_factory=set)
    channels_at_crash: set[str] = field(default_factory=set)
    crashed_at: datetime | None = None
    in_flight: set[str] = field(default_factory=set)  # originates that never reached Asterisk
    workers: list[DialerWorker] = field(default_factory=list)


def worker(settings: Settings, db: Database, asterisk: FakeAsterisk, name: str) -> DialerWorker:
    loop = asyncio.get_running_loop()
    started = loop.time()
    return DialerWorker(
        settings,
        db,
        now=lambda: T0 + timedelta(seconds=loop.time() - started),
        monotonic=loop.time,
        campaigns={CAMPAIGN},
        ari_factory=lambda node, _settings: asterisk.client(node.app, name),
    )


Crash = Literal["stopped", "killed", "killed-while-dialling"]


def run_with_crash(settings: Settings, db: Database, crash: Crash) -> Run:
    """Worker 1 dials until 8 calls are in the flow, then ends as `crash` says; 2 s later worker 2
    starts against the same Asterisk and runs the campaign to its end."""

    async def main() -> Run:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        asterisk = FakeAsterisk(default=lab_callee)
        run = Run(asterisk)
        first = worker(settings, db, asterisk, "worker-1")
        run.workers.append(first)
        task = asyncio.create_task(first.run())
        gate, placed = None, 0
        if crash == "killed-while-dialling":
            # The last contacts are claimed (their attempts committed) but their originates hang.
            await until(lambda: len(asterisk.calls("originate")) >= 18, FINISH_WITHIN, interval=0.1)
            gate, placed = asterisk.hold("originate", times=None), len(asterisk.calls("originate"))
        await until(lambda: in_flow(asterisk) >= 8, FINISH_WITHIN, interval=0.1)
        if crash != "stopped":
            # SIGKILL: nothing the process does from now on reaches Asterisk.
            for link in first.nodes.values():
                assert isinstance(link.ari, FakeAri)
                link.ari.kill()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # Database work already handed to a thread finishes (a commit is all or nothing anyway).
        await until(lambda: not loop.threads_busy, FINISH_WITHIN, interval=0.1)
        if gate is not None:
            run.in_flight = {r.params["channelId"] for r in asterisk.calls("originate")[placed:]}
            gate.set()
        run.live_at_crash = await asyncio.to_thread(live_attempts, db)
        run.channels_at_crash = set(asterisk.channels)
        await asyncio.sleep(2.0)
        second = worker(settings, db, asterisk, "worker-2")
        run.workers.append(second)
        async with asyncio.timeout(FINISH_WITHIN):
            await second.run(until=lambda: second.idle() and campaign_over(db))
        return run

    return run_virtual(main())


def run_with_asterisk_restart(settings: Settings, db: Database) -> Run:
    """One worker; Asterisk stops for 3 s when 6 calls are in the flow, then comes back."""

    async def main() -> Run:
        asterisk = FakeAsterisk(default=lab_callee)
        run = Run(asterisk)
        only = worker(settings, db, asterisk, "worker")
        run.workers.append(only)

        async def restart() -> None:
            await until(lambda: in_flow(asterisk) >= 6, FINISH_WITHIN, interval=0.1)
            run.channels_at_crash = set(asterisk.channels)
            run.crashed_at = only.now()
            asterisk.stop()
            await asyncio.sleep(3.0)
            asterisk.start()

        restarting = asyncio.create_task(restart())
        async with asyncio.timeout(FINISH_WITHIN):
            await only.run(until=lambda: restarting.done() and only.idle() and campaign_over(db))
        await restarting
        return run

    return run_virtual(main())


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("crash", ["stopped", "killed", "killed-while-dialling"])
def test_a_new_worker_adopts_or_closes_every_live_attempt(
    lab_settings: Settings, db: Database, crash: Crash
) -> None:
    make_campaign(db, "9" * 8 + "0" * 6 + "1" * 6 + "2" * 4)
    run = run_with_crash(lab_settings, db, crash)
    assert len(run.live_at_crash) >= 8
    if crash != "stopped":
        assert run.live_at_crash & run.channels_at_crash, "the dead worker's calls were still up in Asterisk"
    attempts = {a.id: a for a in check_ledger(db)}
    left = [attempts[i] for i in run.live_at_crash]
    # Each attempt the first worker left live was either followed again by the second (state
    # ended, marked resumed) or closed by reconciliation because its channel had gone.
    adopted = [a for a in left if a.state is AttemptState.ended]
    closed = [a for a in left if a.state is AttemptState.reconciled]
    assert len(adopted) + len(closed) == len(left) and closed
    assert all(a.detail.get("resumed") for a in adopted)
    assert all(a.outcome == "interrupted" for a in closed)
    if crash != "stopped":
        # Found in Stasis, their flow gone with the dead worker: hung up, counted as interrupted.
        assert any(a.outcome == "interrupted" for a in adopted)
    if crash == "killed-while-dialling":
        # Claimed and committed but never dialled: no channel, so closed and retried like the rest.
        assert run.in_flight and run.in_flight <= {a.id for a in closed}
    # Nothing is left up in Asterisk, and the second worker never dialled an attempt twice.
    assert not set(attempts) & set(run.asterisk.channels)
    originated = [r.params["channelId"] for r in run.asterisk.calls("originate")]
    assert len(originated) == len(set(originated))


def test_an_asterisk_restart_cuts_calls_that_are_then_retried(lab_settings: Settings, db: Database) -> None:
    make_campaign(db, "9" * 6 + "0" * 5 + "1" * 5)
    run = run_with_asterisk_restart(lab_settings, db)
    attempts = check_ledger(db)
    assert run.crashed_at is not None and run.asterisk.restarts == 1
    cut = [a for a in attempts if a.id in run.channels_at_crash]
    assert len(cut) >= 6
    assert all(a.state is AttemptState.ended and a.ended_at and a.ended_at >= run.crashed_at for a in cut)
    retried = {a.contact_id for a in attempts if a.created_at > run.crashed_at}
    assert {a.contact_id for a in cut} <= retried | {a.contact_id for a in cut if a.outcome == "confirmed"}
    assert [a for a in attempts if a.created_at > run.crashed_at and a.outcome == "confirmed"]


def test_calls_cut_mid_flow_by_an_asterisk_restart_are_interrupted(
    lab_settings: Settings, db: Database
) -> None:
    make_campaign(db, "9" * 6 + "0" * 5 + "1" * 5)
    run = run_with_asterisk_restart(lab_settings, db)
    cut = [a for a in check_ledger(db) if a.id in run.channels_at_crash]
    assert cut and all(a.outcome == "interrupted" for a in cut), sorted(str(a.outcome) for a in cut)


def test_a_paused_campaign_places_no_calls(lab_settings: Settings, db: Database) -> None:
    make_campaign(db, "0" * 3)
    with db.session() as session:
        svc.set_status(session, CAMPAIGN, CampaignStatus.paused, actor="test")

    async def main() -> FakeAsterisk:
        asterisk = FakeAsterisk(default=lab_callee)
        only = worker(lab_settings, db, asterisk, "worker")
        passes = itertools.count(1)
        # Ten passes with the node ready to dial: a running campaign would have dialled in the first.
        await only.run(until=lambda: only.nodes[NODE.name].ready and next(passes) > 10)
        return asterisk

    asterisk = run_virtual(main())
    assert asterisk.calls("originate") == []
    with db.session() as session:
        assert session.scalar(select(Attempt.id).limit(1)) is None
