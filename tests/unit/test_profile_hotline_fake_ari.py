"""Inbound calls routed by agents' profiles, on the fake Asterisk in virtual time (both databases):
a line goes to the agents who serve it, a line that asks for a language to a speaker, and a
caller behind another in the same skill's queue is put through at once to an agent the caller
ahead could not take, instead of waiting for that caller to give up."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from agents import profiles
from agents.handover import Handover, HandoverDeps, SkillQueues
from core.db import Database
from core.settings import Settings
from hotline.config import InboundConfig, InboundNumber
from hotline.service import Hotline, InboundCall, InboundResult
from ivr.runner import FlowRunner
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.unit.test_hotline_fake_ari import ANSWERS, HOTLINE, TUESDAY_10AM, World, presses, world
from tests.utils.agents import available, endpoint_of, make_agents

ELDER_LINE = "96100"


def config(*, elder_language: str | None = None) -> InboundConfig:
    hours = {"mon-fri": ["08:30-17:30"]}
    return InboundConfig(
        timezone="Asia/Shanghai",
        numbers={
            HOTLINE: InboundNumber(
                name="community-hotline", hours=hours, closed_dates=[date(2026, 10, 1)], queue_timeout=20
            ),
            ELDER_LINE: InboundNumber(
                name="elder-line", hours=hours, queue_timeout=20, language=elder_language
            ),
        },
    )


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"], "wong": ["welfare"]})
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def profile(db: Database, name: str, **fields: list[str]) -> None:
    with db.session() as s:
        profiles.update_profile(s, name, actor="test", **fields)  # type: ignore[arg-type]


async def serve(w: World, queues: SkillQueues, number: str, *, after: float = 0.0) -> InboundResult:
    """One caller on ``number`` who presses 2 (elder services: skill welfare), talks, hangs up."""
    await asyncio.sleep(after)
    channel_id = w.caller(presses("2", hangup_on="pressed", hangup_after=30), number=number)
    runner = FlowRunner(
        w.ari, SilentPrompts(w.settings.var_dir / "prompts"), recordings_dir=w.settings.recordings_dir
    )
    handover = Handover(HandoverDeps(w.ari, w.dispatcher, w.db, w.settings, queues=queues))
    call = InboundCall(channel_id, number, w.ari, w.dispatcher, runner, handover, w.settings, w.db)
    return await w.hotline.handle(call)


def scenario(
    settings: Settings, db: Database, cfg: InboundConfig, *calls: tuple[str, float]
) -> list[InboundResult]:
    async def main() -> list[InboundResult]:
        async with world(settings, db, TUESDAY_10AM) as w:
            w.hotline = Hotline(cfg, now=lambda: TUESDAY_10AM)
            w.asterisk.callee(endpoint_of(db, "wong"), ANSWERS)
            queues = SkillQueues()
            return list(await asyncio.gather(*(serve(w, queues, n, after=t) for n, t in calls)))

    return run_virtual(main())


def test_a_line_goes_to_its_agents_and_a_caller_behind_is_not_held_up(
    settings: Settings, db: Database
) -> None:
    profile(db, "mei", lines=["elder-line"])  # 96100 only, by its name
    profile(db, "lin", lines=[HOTLINE])  # 12345 only, by its number; but lin is not logged in
    profile(db, "wong", lines=["elder-line"])
    available(db, "mei", "wong")  # nobody has had a call: routing's order is by name
    # The hotline's caller waits first; the elder line's caller comes 3 s later, behind them in
    # the welfare queue. Nobody free serves the hotline; mei and wong serve the elder line.
    first, second = scenario(settings, db, config(), (HOTLINE, 0.0), (ELDER_LINE, 3.0))
    assert first.outcome == "abandoned" and first.bridge is not None and first.bridge.agents_tried == []
    assert second.outcome == "agent" and second.bridge is not None and second.bridge.agent == "mei"
    assert second.bridge.wait_seconds < 5, "put through at once, not after the caller ahead gave up (20 s)"


def test_a_line_that_asks_for_cantonese_goes_to_a_speaker(settings: Settings, db: Database) -> None:
    profile(db, "mei", languages=["zh-CN"])
    profile(db, "wong", languages=["yue", "zh-CN"])
    available(db, "mei", "lin", "wong")  # nobody has had a call: routing's order is by name
    [elder] = scenario(settings, db, config(elder_language="yue"), (ELDER_LINE, 0.0))
    assert elder.outcome == "agent" and elder.bridge is not None and elder.bridge.agent == "wong"
    assert elder.bridge.agents_tried == ["wong"], "lin and mei come first by name but speak no Cantonese"
    [hotline] = scenario(settings, db, config(elder_language="yue"), (HOTLINE, 0.0))
    assert hotline.bridge is not None and hotline.bridge.agent == "lin", (
        "no language asked: the first in order"
    )
