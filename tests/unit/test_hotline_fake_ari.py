"""The inbound hotline, branch by branch, on the fake Asterisk in virtual time (both databases):
the menu's keys, callbacks, after hours, a full queue, a caller who leaves, a number nobody
serves -- and, once, the whole path as `warmline up` wires it: the dialer worker's ARI router
hands the unsubscribed StasisStart to the handler the hotline registered for ``inbound``.

The lab test (tests/integration/test_inbound_lab.py) keeps what only Asterisk shows: the
``lab-inbound`` context, real prompts and DTMF, a real agent's phone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from agents.handover import Handover, HandoverDeps, SkillQueues
from core.ari_events import EventDispatcher
from core.call_tickets import ticket_secret, verify
from core.db import Database, utcnow
from core.settings import Settings
from dialer.engine.runtime import DialerWorker
from dialer.models import Campaign, CampaignStatus, Contact, ContactState
from hotline.config import InboundConfig, InboundNumber
from hotline.models import InboundCallRecord
from hotline.plugin import register
from hotline.service import INBOUND_ARG, Hotline, InboundCall, InboundResult
from ivr.runner import FlowRunner
from recordings.models import CallRecording
from tests.fakes.ari import Callee, FakeAri, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.utils import until
from tests.utils.agents import available, endpoint_of, fake_node, make_agents, record_and_enter_stasis

HOTLINE = "12345"
CALLER = "13800138001"
TUESDAY_10AM = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: open
NATIONAL_DAY = datetime(2026, 10, 1, 3, 0, tzinfo=UTC)  # a closed date
CONFIG = InboundConfig(
    timezone="Asia/Shanghai",
    numbers={
        HOTLINE: InboundNumber(
            name="community-hotline",
            hours={"mon-fri": ["08:30-17:30"]},
            closed_dates=[date(2026, 10, 1)],
            queue_timeout=20,
            announce_every=10,
        )
    },
)
ANSWERS = Callee(answer_after=0.5)
# The menu: prompt 1 is the welcome, prompt 2 the menu itself; keys are pressed as it plays.
MENU_PROMPT = 2


def presses(key: str, **kw: Any) -> Callee:
    return Callee(press=key, press_on_prompt=MENU_PROMPT, press_when="started", press_after=1.0, **kw)


@dataclass
class World:
    asterisk: FakeAsterisk
    ari: FakeAri
    dispatcher: EventDispatcher
    settings: Settings
    db: Database
    hotline: Hotline

    def caller(self, script: Callee, *, number: str = HOTLINE) -> str:
        """An inbound call in Stasis with ``inbound,<number>``, not yet answered."""
        channel_id = f"in-{uuid.uuid4()}"
        channel = self.asterisk.place(
            channel_id, "PJSIP/trunk", stage="stasis", args=[INBOUND_ARG, number], callee=script
        )
        channel.state, channel.caller_number = "Ring", CALLER
        return channel_id

    async def serve(self, channel_id: str, number: str = HOTLINE) -> InboundResult:
        runner = FlowRunner(
            self.ari,
            SilentPrompts(self.settings.var_dir / "prompts"),
            recordings_dir=self.settings.recordings_dir,
        )
        handover = Handover(
            HandoverDeps(self.ari, self.dispatcher, self.db, self.settings, queues=SkillQueues())
        )
        call = InboundCall(
            channel_id, number, self.ari, self.dispatcher, runner, handover, self.settings, self.db
        )
        return await self.hotline.handle(call)


@asynccontextmanager
async def world(settings: Settings, db: Database, now: datetime) -> AsyncIterator[World]:
    async with fake_node(settings, db, {"mei": ANSWERS, "lin": ANSWERS}) as node:
        hotline = Hotline(CONFIG, now=lambda: now)
        yield World(node.asterisk, node.ari, node.dispatcher, settings, db, hotline)


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    make_agents(db, {"mei": ["vaccination", "welfare"], "lin": ["welfare"]})
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def scenario(
    settings: Settings, db: Database, body: Callable[[World], Awaitable[Any]], *, now: datetime = TUESDAY_10AM
) -> Any:
    async def main() -> Any:
        async with world(settings, db, now) as w:
            return await body(w)

    return run_virtual(main())


def callbacks(db: Database) -> list[Contact]:
    with db.session() as s:
        campaign = s.scalar(select(Campaign).where(Campaign.name == "hotline-callbacks"))
        if campaign is None:
            return []
        assert campaign.status is CampaignStatus.draft, "a manager starts the callback campaign"
        return list(s.scalars(select(Contact).where(Contact.campaign_id == campaign.id)))


def test_key_1_reaches_the_vaccination_agent_and_is_recorded(settings: Settings, db: Database) -> None:
    available(db, "mei", "lin")

    async def body(w: World) -> tuple[InboundResult, World]:
        cid = w.caller(presses("1", hangup_on="pressed", hangup_after=30))
        return await w.serve(cid), w

    result, w = scenario(settings, db, body)
    assert (result.outcome, result.line, result.open) == ("agent", "community-hotline", True)
    assert result.bridge is not None and result.bridge.agent == "mei", "only mei has the vaccination skill"
    assert result.flow is not None and result.flow.path[:2] == ["welcome", "menu"]
    ring = w.asterisk.calls("originate")[0]
    assert ring.body["variables"]["PJSIP_HEADER(add,X-Warmline-Script)"] == "inbound:community-hotline"
    # the line and the ticket that lets mei's phone read the line's script and save its case form
    assert ring.body["variables"]["PJSIP_HEADER(add,X-Warmline-Line)"] == "community-hotline"
    ticket = unquote(ring.body["variables"]["PJSIP_HEADER(add,X-Warmline-Ticket)"])
    claims = verify(
        ticket_secret(settings.var_dir), ticket, call_ref=result.channel_id, agent="mei", now=utcnow()
    )
    assert claims is not None and claims.line == "community-hotline"
    with db.session() as s:
        rows = list(s.scalars(select(CallRecording)))
        assert [r.agent for r in rows] == ["mei"] and rows[0].campaign is None
        # ... and the call's record for staffing forecasts: queued, answered by mei, timed.
        [record] = s.scalars(select(InboundCallRecord))
        assert (record.line, record.queued, record.outcome, record.agent) == (
            "community-hotline",
            True,
            "agent",
            "mei",
        )
        assert record.talk_s == result.bridge.talk_seconds > 0
    assert callbacks(db) == []


def test_key_9_books_a_callback(settings: Settings, db: Database) -> None:
    async def body(w: World) -> InboundResult:
        return await w.serve(w.caller(presses("9")))

    result = scenario(settings, db, body)
    assert result.outcome == "callback" and result.callback_contact_id is not None
    [contact] = callbacks(db)
    assert contact.phone_e164 == "+86" + CALLER and contact.state is ContactState.pending
    assert contact.fields["reason"] == "menu" and contact.fields["hotline"] == HOTLINE


def test_after_hours_the_caller_leaves_a_message_for_a_callback(settings: Settings, db: Database) -> None:
    available(db, "mei", "lin")  # agents do not matter when the line is closed

    async def body(w: World) -> tuple[InboundResult, World]:
        # prompt 1 says the hours, prompt 2 offers the callback: press 1, speak, hang up.
        return await w.serve(w.caller(presses("1", hangup_on="pressed", hangup_after=8))), w

    result, w = scenario(settings, db, body, now=NATIONAL_DAY)
    assert (result.outcome, result.open) == ("callback", False)
    assert not w.asterisk.calls("originate"), "no agent is rung when the line is closed"
    [contact] = callbacks(db)
    assert contact.fields["reason"] == "after_hours" and contact.fields["message"].startswith("ivr-")


def test_nobody_free_in_time_books_a_callback_and_says_goodbye(settings: Settings, db: Database) -> None:
    async def body(w: World) -> tuple[InboundResult, World, str]:
        cid = w.caller(presses("2"))
        return await w.serve(cid), w, cid

    result, w, cid = scenario(settings, db, body)
    assert result.outcome == "abandoned" and result.bridge is not None
    assert result.bridge.wait_seconds == pytest.approx(20, abs=1.1), "the line's queue timeout"
    [contact] = callbacks(db)
    assert contact.fields["reason"] == "queue_timeout"
    assert w.asterisk.calls("play")[-1].target == cid, "the goodbye is said"
    assert cid in w.asterisk.destroyed, "then the call ends"


def test_caller_who_hangs_up_in_the_menu_leaves_nothing(settings: Settings, db: Database) -> None:
    async def body(w: World) -> InboundResult:
        return await w.serve(w.caller(Callee(hangup_on="prompt", hangup_prompt=MENU_PROMPT, hangup_after=1)))

    result = scenario(settings, db, body)
    assert result.outcome == "caller_hangup" and result.bridge is None
    assert callbacks(db) == []
    with db.session() as s:
        [record] = s.scalars(select(InboundCallRecord))
        assert (record.queued, record.agent) == (False, None), "never offered to agents: not in forecasts"


def test_a_number_nobody_serves_is_rejected(settings: Settings, db: Database) -> None:
    async def body(w: World) -> tuple[InboundResult, World, str]:
        cid = w.caller(Callee(), number="99999")
        return await w.serve(cid, "99999"), w, cid

    result, w, cid = scenario(settings, db, body)
    assert result.outcome == "rejected" and w.asterisk.destroyed.get(cid) == 16
    assert w.asterisk.calls("hangup")[0].params["reason"] == "unallocated"


def test_served_as_warmline_up_wires_it(settings: Settings, db: Database) -> None:
    """The registered Stasis handler, reached through the dialer worker's ARI router."""
    from core.features import Registry

    available(db, "lin")
    registry = Registry()
    register(registry)
    assert set(registry.stasis) == {INBOUND_ARG}

    async def main() -> tuple[list[InboundResult], FakeAsterisk]:
        asterisk = FakeAsterisk()
        asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
        asterisk.callee(endpoint_of(db, "lin"), ANSWERS)
        hotline = Hotline(CONFIG, now=lambda: TUESDAY_10AM)
        worker = DialerWorker(
            settings,
            db,
            stasis={INBOUND_ARG: hotline.on_stasis_start},
            ari_factory=lambda *_: asterisk.client(),
        )
        await worker.start()
        try:
            await until(lambda: all(link.ready for link in worker.nodes.values()), what="reconciled")
            channel = asterisk.place(
                "in-1", "PJSIP/trunk", stage="stasis", args=[INBOUND_ARG, HOTLINE],
                callee=presses("2", hangup_on="pressed", hangup_after=20),
            )  # fmt: skip
            channel.caller_number = CALLER
            asterisk.emit_about(channel, "StasisStart", args=[INBOUND_ARG, HOTLINE])
            await until(lambda: hotline.results, timeout=120, interval=1, what="the call was served")
        finally:
            await worker.stop()
        return list(hotline.results), asterisk

    results, asterisk = run_virtual(main())
    assert [(r.outcome, r.bridge.agent if r.bridge else None) for r in results] == [("agent", "lin")]
    assert "in-1" in asterisk.destroyed
