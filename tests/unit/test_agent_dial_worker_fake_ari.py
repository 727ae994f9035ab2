"""Calls agents ask for, placed by the dialer worker as `warmline up` runs it, on the fake Asterisk in
virtual time (SQLite and PostgreSQL): the request stored by the API is taken by the worker, the
agent's phone rings first, the far end is dialled, and the attempt is closed with its outcome (a
wrap-up posted during the call decides the contact). The dialer never dials a preview campaign's
contacts by itself. A call that reached no far end counts nothing and leaves the contact with
the agent. A callback the dialer finds due while it is kept for its agent rings that agent first:
nobody else gets it within its grace."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agents.states import current_state
from core.db import Database
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.agent_dial import service
from dialer.engine import runtime
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState
from dialer.wrapup import WrapUpRequest, record_wrapup
from recordings.models import CallRecording
from tests.fakes.ari import BUSY, NO_ANSWER, Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import SilentPromptCache
from tests.utils import until
from tests.utils.agents import available, endpoint_of, make_agents, record_and_enter_stasis

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
NODE = AsteriskNode(name="fake", ari_password="unused: the fake takes any")
PHONE = "+8613800138009"
FAR_END = "Local/8613800138009@lab-pstn"
TALKS = Callee(answer_after=2.0, hangup_on="answer", hangup_after=30.0)


@pytest.fixture(autouse=True)
def silent_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)


def make_preview(db: Database) -> int:
    with db.session() as s:
        spec = svc.build_spec({"name": "w48", "mode": "preview", "windows": {"daily": ["00:00-24:00"]}})
        campaign = svc.create_campaign(s, spec, actor="t")
        campaign.status = CampaignStatus.running
        contact = Contact(campaign_id=campaign.id, phone_e164=PHONE, name="王奶奶")
        s.add(contact)
        s.flush()
        return contact.id


def attempts(db: Database) -> list[Attempt]:
    with db.session() as s:
        return list(s.scalars(select(Attempt).order_by(Attempt.created_at)))


def contact_of(db: Database, contact_id: int) -> Contact:
    with db.session() as s:
        found = s.get(Contact, contact_id)
        assert found is not None
        return found


def run_worker(
    tmp_path: Path, db: Database, agent: Callee, far_end: Callee, body: Any, *, prepare: Any = None
) -> dict[str, Any]:
    """Run the worker on the fake Asterisk while `body(now)` acts as the agent through the service."""
    settings = Settings(
        var_dir=tmp_path / "var", database_url=db.url, asterisk_nodes=[NODE], dialer_tick=0.5, _env_file=None
    )
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        asterisk = FakeAsterisk()
        asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
        asterisk.callee(endpoint_of(db, "mei"), agent)
        asterisk.callee(FAR_END, far_end)
        if prepare is not None:
            prepare(asterisk)

        def now() -> datetime:
            return T0 + timedelta(seconds=loop.time() - started)

        worker = DialerWorker(
            settings, db, now=now, monotonic=loop.time, ari_factory=lambda *_: asterisk.client()
        )
        task = asyncio.create_task(worker.run())
        try:
            await body(now, seen)
            seen["originated"] = [str(r.params["endpoint"]) for r in asterisk.calls("originate")]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_virtual(main())
    return seen


def dial(db: Database, contact_id: int, at: datetime) -> str:
    with db.session() as s:
        desk = service.desk_of(s, "mei")
        found = service.next_preview(s, desk, at)
        assert found is not None and found.contact_id == contact_id
    with db.session() as s:
        return service.request_dial(s, service.desk_of(s, "mei"), service.DialTarget(contact_id), at).call_ref


def test_a_preview_call_is_placed_agent_first_and_closed_with_the_wrap_up(
    tmp_path: Path, db: Database
) -> None:
    make_agents(db, {"mei": []})
    available(db, "mei")
    contact_id = make_preview(db)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        await asyncio.sleep(5)  # the worker runs a while: it dials nobody of a preview campaign
        seen["before"] = len(attempts(db))
        call_ref = dial(db, contact_id, now())
        await until(
            lambda: attempts(db)[0].state is AttemptState.answered, 300, interval=0.5, what="answered"
        )
        due = now() + timedelta(minutes=2)
        with db.session() as s:  # mei's softphone posts the wrap-up while the call still runs
            record_wrapup(s, WrapUpRequest(call_ref, "mei", "callback", callback_at=due), now())
        await until(lambda: attempts(db)[0].ended_at is not None, 300, interval=0.5, what="the close")
        seen["due"] = due

    seen = run_worker(tmp_path, db, Callee(answer_after=1.0), TALKS, body)
    assert seen["before"] == 0, "the dialer never dials a preview campaign's contacts itself"
    assert seen["originated"] == [endpoint_of(db, "mei"), FAR_END], "the agent's phone first"
    [attempt] = attempts(db)
    assert (attempt.outcome, attempt.agent, attempt.disposition, attempt.node) == (
        "agent",
        "mei",
        "callback",
        "fake",
    )
    assert attempt.answered_at is not None and attempt.detail["recording"]
    contact = contact_of(db, contact_id)
    assert (contact.state, contact.assigned_agent, contact.attempts) == (ContactState.pending, "mei", 1)
    assert contact.next_due_at == seen["due"], "the wrap-up, not the call's outcome, decides the contact"
    with db.session() as s:
        rec = s.scalar(select(CallRecording))
        assert rec is not None and (rec.attempt_id, rec.agent) == (attempt.id, "mei")


def test_a_busy_far_end_is_an_attempt_retried_by_the_campaigns_rules(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"mei": []})
    available(db, "mei")
    contact_id = make_preview(db)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        dial(db, contact_id, now())
        await until(lambda: bool(attempts(db)) and attempts(db)[0].ended_at is not None, 300, interval=0.5,
                    what="the close")  # fmt: skip

    run_worker(tmp_path, db, Callee(answer_after=1.0), BUSY, body)
    [attempt] = attempts(db)
    assert (attempt.outcome, attempt.hangup_cause) == ("busy", 17)
    contact = contact_of(db, contact_id)
    assert (contact.state, contact.attempts, contact.last_outcome) == (ContactState.pending, 1, "busy")
    assert contact.next_due_at is not None and contact.next_due_at > T0 + timedelta(minutes=5)


def test_an_agent_who_does_not_answer_counts_nothing_and_keeps_the_contact(
    tmp_path: Path, db: Database
) -> None:
    make_agents(db, {"mei": []})
    available(db, "mei")
    contact_id = make_preview(db)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        dial(db, contact_id, now())
        await until(lambda: contact_of(db, contact_id).state is ContactState.pending, 300, interval=0.5,
                    what="the contact back")  # fmt: skip

    seen = run_worker(tmp_path, db, NO_ANSWER, TALKS, body)
    assert seen["originated"] == [endpoint_of(db, "mei")], "the far end is never dialled"
    assert attempts(db) == [], "no attempt: nobody was called"
    contact = contact_of(db, contact_id)
    assert (contact.attempts, contact.reserved_by) == (0, "mei"), "still mei's to try again"


def test_asterisk_unreachable_drops_the_call_and_keeps_the_contact(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"mei": []})
    available(db, "mei")
    contact_id = make_preview(db)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        dial(db, contact_id, now())
        await until(lambda: not attempts(db), 300, interval=0.5, what="the request dropped")

    run_worker(
        tmp_path, db, Callee(answer_after=1.0), TALKS, body, prepare=lambda a: a.unreachable("originate")
    )
    contact = contact_of(db, contact_id)
    assert (contact.state, contact.attempts, contact.reserved_by) == (ContactState.pending, 0, "mei")


def make_kept_callback(db: Database, now: datetime) -> int:
    """A broadcast-mode agent campaign (the dialer dials it) with a callback mei promised, due now."""
    with db.session() as s:
        spec = svc.build_spec({"name": "hotline", "kind": "agent", "windows": {"daily": ["00:00-24:00"]}})
        campaign = svc.create_campaign(s, spec, actor="t")
        campaign.status = CampaignStatus.running
        contact = Contact(
            campaign_id=campaign.id, phone_e164=PHONE, name="王奶奶", next_due_at=now,
            assigned_agent="mei", assigned_until=now + timedelta(minutes=30),
        )  # fmt: skip
        s.add(contact)
        s.flush()
        return contact.id


def test_a_callback_kept_for_its_agent_rings_that_agent_first_and_nobody_else(
    tmp_path: Path, db: Database
) -> None:
    make_agents(db, {"mei": [], "lin": []})
    available(db, "lin", idle_minutes={"lin": 60})  # lin is idle longer: the hand-over would pick her
    available(db, "mei")
    contact_id = make_kept_callback(db, T0)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        await until(lambda: bool(attempts(db)) and attempts(db)[0].ended_at is not None, 300, interval=0.5,
                    what="the callback's close")  # fmt: skip

    seen = run_worker(tmp_path, db, Callee(answer_after=1.0), TALKS, body)
    assert seen["originated"] == [endpoint_of(db, "mei"), FAR_END], "mei's phone first, lin never rung"
    [attempt] = attempts(db)
    assert (attempt.agent, attempt.outcome, attempt.detail["placed"]) == (
        "mei", "agent", {"by": "dialer", "kind": "callback"},
    )  # fmt: skip
    assert contact_of(db, contact_id).state is ContactState.done


def test_a_kept_callback_whose_agent_does_not_answer_waits_for_them(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"mei": [], "lin": []})
    available(db, "lin", "mei")
    contact_id = make_kept_callback(db, T0)

    async def body(now: Any, seen: dict[str, Any]) -> None:
        await until(lambda: contact_of(db, contact_id).next_due_at != T0, 300, interval=0.5, what="deferred")
        with db.session() as s:
            state = current_state(s, "mei")
            seen["mei"] = (state.state, state.reason) if state else None

    seen = run_worker(tmp_path, db, NO_ANSWER, TALKS, body)
    assert seen["originated"] == [endpoint_of(db, "mei")], "the far end is not dialled, nor lin rung"
    assert seen["mei"] == ("break", "no_answer"), "as the hand-over does with an agent who does not answer"
    assert attempts(db) == []
    contact = contact_of(db, contact_id)
    assert contact.state is ContactState.pending and contact.assigned_agent == "mei"
