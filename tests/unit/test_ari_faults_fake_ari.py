"""ARI faults with the fake Asterisk (docs/faults.md): an originate whose answer is lost is
reconciled against Asterisk's channels, a channel nobody follows is hung up, a conversation an
agent had keeps its outcome whatever fails after it. The call alone first, then the whole worker on
SQLite and PostgreSQL (virtual clock: a campaign takes milliseconds).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.ari import AriError
from core.db import Database
from core.settings import Settings
from dialer.engine.calls import Call, CallPlan
from dialer.engine.originate import StrayWatch, locate
from dialer.engine.runtime import _override
from dialer.models import Attempt, AttemptState, Contact
from dialer.outcomes import Outcome
from dialer.reconcile import reconcile
from ivr.runner import FlowRunner
from tests.fakes.ari import LISTENER, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.unit.test_call_fake_ari import ATTEMPT, ENDPOINT, dial, line
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - fixtures used by name
    CAMPAIGN,
    FINISH_WITHIN,
    campaign_over,
    check_ledger,
    lab_settings,
    make_campaign,
    silent_prompts,
    worker,
)
from tests.utils import until

# ------------------------------------------------------------------ one call


def test_timeout_then_exists_the_call_is_followed_not_redialled(tmp_path: Path) -> None:
    call = dial(tmp_path, LISTENER, setup=lambda asterisk, ari: asterisk.read_timeout("originate"))
    report = call.report
    assert report.originate_error is None and not report.not_dialled
    assert report.detail["originate_timeout"] == "exists"
    assert report.answered and report.flow_outcome, "followed to the end of its flow"
    assert call.ops.count("originate") == 1
    assert call.ops[:2] == ["originate", "get_channel"]
    assert call.notes[0] == "originated"
    assert call.asterisk.channels == {}


def test_timeout_then_absent_is_failed_and_watched(tmp_path: Path) -> None:
    call = dial(
        tmp_path, LISTENER, setup=lambda asterisk, ari: asterisk.read_timeout("originate", placed=False)
    )
    report = call.report
    assert report.originate_error and not report.not_dialled
    assert report.detail["originate_timeout"] == "absent"
    assert call.ops == ["originate", "get_channel", "get_channel", "get_channel"]
    assert _override(report) is Outcome.failed, "counted, and retried by the campaign's rule"
    assert call.notes == []


def test_locate_says_unknown_when_ari_cannot_answer() -> None:
    async def main() -> tuple[str, str, str]:
        asterisk = FakeAsterisk()
        ari = asterisk.client()
        asterisk.read_timeout("get_channel", placed=False, times=None)
        unknown = await locate(ari, "x", looks=2, every=0.5)
        asterisk.place("y", ENDPOINT, stage="ringing")
        asterisk._failures.clear()
        exists = await locate(ari, "y")
        absent = await locate(ari, "z", looks=1)
        return unknown.state, exists.state, absent.state

    assert run_virtual(main()) == ("unknown", "exists", "absent")


def test_find_channel_is_none_on_404_and_raises_otherwise() -> None:
    async def main() -> None:
        asterisk = FakeAsterisk()
        ari = asterisk.client()
        assert await ari.find_channel("nope") is None
        asterisk.place("c1", ENDPOINT, stage="ringing")
        found = await ari.find_channel("c1")
        assert found is not None and found["id"] == "c1"
        asterisk.fail("get_channel", 500)
        with pytest.raises(AriError):
            await ari.find_channel("c1")

    run_virtual(main())


def test_stray_watch_rules() -> None:
    watch = StrayWatch()
    watch.add("late")
    ringing = {"type": "ChannelStateChange", "channel": {"id": "late", "state": "Ringing"}}
    assert watch.stray(ringing, following=set(), ready=False) == "late"
    assert "late" not in watch and watch.hung_up == 1
    start = {"type": "StasisStart", "channel": {"id": "other"}, "args": ["dialer"]}
    assert watch.stray(start, following=set(), ready=False) is None, "not reconciled yet: adopt first"
    assert watch.stray(start, following={"other"}, ready=True) is None, "followed"
    assert watch.stray(start, following=set(), ready=True) == "other"
    inbound = {"type": "StasisStart", "channel": {"id": "in"}, "args": ["inbound"]}
    assert watch.stray(inbound, following=set(), ready=True) is None, "the hotline's call"
    watch.add("gone")
    assert (
        watch.stray({"type": "ChannelDestroyed", "channel": {"id": "gone"}}, following=(), ready=True) is None
    )
    assert "gone" not in watch


class BrokenAfterAgent:
    """A hand-over whose agent answers and talks, then fails (the recording's merge)."""

    async def connect(self, request: Any) -> Any:
        assert request.on_agent is not None
        await request.on_agent("mei")
        await asyncio.sleep(30)  # the conversation
        raise RuntimeError("recording merge failed")


def test_a_conversation_keeps_its_outcome_after_an_error(tmp_path: Path) -> None:
    async def main() -> Any:
        asterisk = FakeAsterisk(callees={ENDPOINT: LISTENER})
        prompts = SilentPrompts(tmp_path / "prompts")
        async with line(asterisk, prompts) as (ari, dispatcher):
            notes: list[str] = []

            async def notify(kind: str, detail: dict[str, Any]) -> None:
                notes.append(kind)

            plan = CallPlan(
                campaign="c",
                endpoint=ENDPOINT,
                app="warmline",
                amd_policy="retry",
                flow=None,
                caller_id=None,
                ring_timeout=30,
                agent_campaign=True,
            )
            call = Call(
                ari,
                dispatcher,
                FlowRunner(ari, prompts),
                plan,
                ATTEMPT,
                {},
                notify,
                handover=BrokenAfterAgent(),  # type: ignore[arg-type]
            )
            report = await call.run()
            return report, notes, asterisk

    report, notes, asterisk = run_virtual(main())
    assert "agent" in notes and report.detail["error"].startswith("RuntimeError")
    assert report.flow_outcome == "agent" and report.answered
    assert _override(report) is Outcome.agent, "never abandoned, never redialled"
    assert asterisk.channels == {}


def test_reconcile_keeps_an_agents_conversation(db: Database) -> None:
    """The close was lost (a database blip) after an agent had the call: reconciliation closes it
    as the agent's, not interrupted."""
    make_campaign(db, "00")
    from datetime import UTC, datetime

    from dialer import campaigns as svc
    from dialer.engine.ledger import claim, took_call

    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    with db.session() as session:
        a, b = (
            c.attempt_id for c in claim(session, svc.require_campaign(session, CAMPAIGN), 2, now, node="fake")
        )
        took_call(session, a, "mei")
    with db.session() as session:
        report = reconcile(session, "fake", channels=set(), now=now)
    assert sorted(report.closed) == sorted([a, b])
    with db.session() as session:
        talked, cut = session.get(Attempt, a), session.get(Attempt, b)
        assert talked is not None and cut is not None
        assert talked.outcome == "agent" and cut.outcome == "interrupted"
        contact = session.get(Contact, talked.contact_id)
        assert contact is not None and contact.next_due_at is None, "not redialled"


# ------------------------------------------------------------------ the worker, both databases


def run_campaign(settings: Settings, db: Database, setup: Any) -> FakeAsterisk:
    async def main() -> FakeAsterisk:
        from tests.unit.test_reconcile_fake_ari import lab_callee

        asterisk = FakeAsterisk(default=lab_callee)
        setup(asterisk)
        only = worker(settings, db, asterisk, "worker")
        async with asyncio.timeout(FINISH_WITHIN):
            await only.run(until=lambda: only.idle() and campaign_over(db))
        return asterisk

    return run_virtual(main())


def dialled_once_per_attempt(asterisk: FakeAsterisk, db: Database) -> None:
    originated = [r.params["channelId"] for r in asterisk.calls("originate")]
    assert len(originated) == len(set(originated)), "no attempt dialled twice"
    with db.session() as session:
        ids = set(session.scalars(select(Attempt.id)))
    assert set(originated) <= ids
    assert not (ids & set(asterisk.channels)), "no channel left up"


def test_worker_timeout_then_exists(lab_settings: Settings, db: Database) -> None:  # noqa: F811
    make_campaign(db, "0" * 6)
    asterisk = run_campaign(lab_settings, db, lambda a: a.read_timeout("originate", times=3))
    attempts = check_ledger(db)
    dialled_once_per_attempt(asterisk, db)
    followed = [a for a in attempts if a.detail.get("originate_timeout") == "exists"]
    assert len(followed) == 3 and all(a.outcome != "failed" for a in followed)
    assert len(attempts) == 6, "each contact called once: the timed-out ones were followed"


def test_worker_timeout_then_absent_and_a_late_channel(lab_settings: Settings, db: Database) -> None:  # noqa: F811
    make_campaign(db, "0" * 4)
    tasks: list[asyncio.Future[None]] = []

    def setup(asterisk: FakeAsterisk) -> None:
        asterisk.read_timeout("originate", placed=False, times=1)

        async def late() -> None:
            # The lost originate reaches Asterisk after all, once the dialer has given up on it
            # (three looks): the channel rings, nobody's call.
            await until(lambda: len(asterisk.calls("get_channel")) >= 3, FINISH_WITHIN, interval=0.1)
            await asyncio.sleep(5.0)
            lost = asterisk.calls("originate")[0].params["channelId"]
            asterisk.place(lost, ENDPOINT, stage="ringing")

        tasks.append(asyncio.ensure_future(late()))

    asterisk = run_campaign(lab_settings, db, setup)
    attempts = check_ledger(db)
    lost = asterisk.calls("originate")[0].params["channelId"]
    by_id = {a.id: a for a in attempts}
    assert by_id[lost].outcome == "failed" and by_id[lost].detail["originate_timeout"] == "absent"
    assert asterisk.destroyed.get(lost) == 16, "the late channel was hung up by the dialer"
    assert "hangup" in asterisk.ops(lost)
    retry = [a for a in attempts if a.contact_id == by_id[lost].contact_id and a.attempt_no == 2]
    assert retry and retry[0].created_at >= by_id[lost].ended_at, "retried by the rule, not at once"  # type: ignore[operator]
    assert all(a.state in (AttemptState.ended, AttemptState.reconciled) for a in attempts)
    assert not set(asterisk.channels)
    assert tasks[0].done()
