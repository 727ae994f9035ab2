"""The dialer worker, the hand-over and the wrap-up together, on the fake Asterisk in virtual time
(SQLite and PostgreSQL): the attempt is the agent's as soon as they answer, a wrap-up posted while
the dialer is still following the call survives the close, and the promised callback is dialled
when due and offered to the same agent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.engine import runtime
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, CampaignStatus, Contact, ContactState
from dialer.wrapup import WrapUpRequest, record_wrapup
from tests.fakes.ari import Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import SilentPromptCache
from tests.utils import until
from tests.utils.agents import available, endpoint_of, make_agents, record_and_enter_stasis

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # the dialer's clock at the start: Monday 10:00 in Shanghai
NODE = AsteriskNode(name="fake", ari_password="unused: the fake takes any")
PHONE = "+8613900000001"
TALKS = Callee(answer_after=1.0, hangup_on="answer", hangup_after=30.0)  # half a minute with the agent


@pytest.fixture(autouse=True)
def silent_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)


def attempts(db: Database) -> list[Attempt]:
    with db.session() as s:
        return list(s.scalars(select(Attempt).order_by(Attempt.attempt_no)))


def the_contact(db: Database) -> Contact:
    with db.session() as s:
        found: Contact | None = s.scalar(select(Contact))
        assert found is not None
        return found


def test_a_callback_wrapped_up_during_the_call_is_dialled_when_due_for_the_same_agent(
    tmp_path: Path, db: Database
) -> None:
    make_agents(db, {"lin": ["welfare"], "mei": ["welfare"]})
    available(db, "lin", "mei")  # neither has had a call: the name decides, lin first
    settings = Settings(
        var_dir=tmp_path / "var", database_url=db.url, asterisk_nodes=[NODE], dialer_tick=1.0, _env_file=None
    )
    with db.session() as s:
        spec = svc.build_spec({"name": "welfare", "kind": "agent", "windows": {"daily": ["00:00-24:00"]}})
        campaign = svc.create_campaign(s, spec, actor="t")
        campaign.status = CampaignStatus.running
        s.add(Contact(campaign_id=campaign.id, phone_e164=PHONE, name="王奶奶"))
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        asterisk = FakeAsterisk(default=lambda endpoint: TALKS)
        asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
        for agent in ("lin", "mei"):
            asterisk.callee(endpoint_of(db, agent), Callee(answer_after=0.5))

        def now() -> datetime:
            return T0 + timedelta(seconds=loop.time() - started)

        worker = DialerWorker(
            settings, db, now=now, monotonic=loop.time, ari_factory=lambda *_: asterisk.client()
        )
        task = asyncio.create_task(worker.run())
        try:
            await until(
                lambda: any(a.agent for a in attempts(db)), 300, interval=0.5, what="an agent took it"
            )
            [first] = attempts(db)
            seen["taken"] = (first.agent, first.state.value)
            # lin's softphone posts the wrap-up while the dialer still follows the call
            due = now() + timedelta(minutes=3)
            request = WrapUpRequest(call_ref=first.id, agent="lin", disposition="callback", callback_at=due)
            with db.session() as s:
                seen["wrapped"] = record_wrapup(s, request, now()).contact_state
            await until(lambda: attempts(db)[0].ended_at is not None, 300, interval=0.5, what="the close")
            contact = the_contact(db)
            seen["after_close"] = (contact.state, contact.next_due_at == due, contact.assigned_agent)
            available(db, "lin")  # back from her wrap-up; mei, who has had no call, is idle longer
            await until(lambda: len(attempts(db)) == 2 and attempts(db)[1].agent, 600, interval=0.5,
                        what="the callback taken")  # fmt: skip
            second = attempts(db)[1]
            seen["callback"] = (second.agent, second.created_at >= due)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_virtual(main())
    assert seen["taken"] == ("lin", "answered"), "the call is lin's while it is still going on"
    assert seen["wrapped"] is None, "the dialer has not closed it yet: the close applies the wrap-up"
    assert seen["after_close"] == (ContactState.pending, True, "lin")
    assert seen["callback"] == ("lin", True), "dialled when due, and lin got it although mei was idle longer"
