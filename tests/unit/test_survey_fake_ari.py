"""The post-call survey on the fake Asterisk in virtual time (both databases): on a line with
``survey: true`` the hand-over keeps the caller when the agent hangs up first, the caller presses
4, and the score is stored with the call, the agent and the line, and is on the agent's report.
Without the survey (or when the caller hangs up first) the caller's channel ends with the call."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import Database
from core.settings import Settings
from hotline.config import InboundConfig, InboundNumber
from hotline.service import Hotline, InboundResult
from ivr.models import CallSurvey
from tests.fakes.ari import Callee
from tests.fakes.clock import run_virtual
from tests.unit.test_hotline_fake_ari import HOTLINE, TUESDAY_10AM, World, presses
from tests.utils import until
from tests.utils.agents import available, fake_node, make_agents
from workforce.reports import report


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    make_agents(db, {"mei": ["vaccination"]})
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


AGENT_HANGS_UP = Callee(answer_after=0.5, hangup_on="answer", hangup_after=20)


def config(survey: bool) -> InboundConfig:
    line = InboundNumber(name="community-hotline", hours={"mon-fri": ["08:30-17:30"]}, queue_timeout=20)
    return InboundConfig(
        timezone="Asia/Shanghai", numbers={HOTLINE: line.model_copy(update={"survey": survey})}
    )


def run(settings: Settings, db: Database, survey: bool, key: str | None) -> tuple[InboundResult, list[str]]:
    async def main() -> tuple[InboundResult, list[str]]:
        async with fake_node(settings, db, {"mei": AGENT_HANGS_UP}) as node:
            w = World(
                node.asterisk,
                node.ari,
                node.dispatcher,
                settings,
                db,
                Hotline(config(survey), now=lambda: TUESDAY_10AM),
            )
            cid = w.caller(presses("1"))
            served = asyncio.create_task(w.serve(cid))

            def agent_legs() -> list[str]:
                return [c for c in w.asterisk.channels if c.startswith("agent-")]

            await until(agent_legs, timeout=60, what="mei's phone rings")
            await until(lambda: not agent_legs(), timeout=60, what="mei hangs up")
            before = len(w.asterisk.calls("play", cid))
            if key is not None and survey:
                await until(
                    lambda: len(w.asterisk.calls("play", cid)) > before, timeout=10, what="the survey"
                )
                w.asterisk.press(cid, key)
            result = await served
            return result, w.asterisk.ops(cid)

    return run_virtual(main())


def test_the_caller_rates_the_call_after_the_agent_hangs_up(settings: Settings, db: Database) -> None:
    available(db, "mei")
    result, ops = run(settings, db, survey=True, key="4")
    assert (result.outcome, result.bridge.agent if result.bridge else None) == ("agent", "mei")
    assert result.bridge is not None and result.bridge.caller_kept
    assert result.detail["survey"] == 4
    assert ops[-1] == "hangup", "the survey hangs up when it is done"
    with db.session() as s:
        [row] = s.scalars(select(CallSurvey))
        assert (row.call_ref, row.agent, row.line, row.score) == (
            result.channel_id,
            "mei",
            "community-hotline",
            4,
        )
        day = date(2026, 11, 24)
        mei = report(s, config(True), day, day, group="agent", now=TUESDAY_10AM)["rows"][0]
    assert (mei["name"], mei["satisfaction"], mei["surveys"]) == ("mei", 4.0, 1)


def test_no_survey_configured_ends_the_call_with_the_agent(settings: Settings, db: Database) -> None:
    available(db, "mei")
    result, _ops = run(settings, db, survey=False, key=None)
    assert result.outcome == "agent" and result.bridge is not None and not result.bridge.caller_kept
    assert "survey" not in result.detail
    with db.session() as s:
        assert s.scalars(select(CallSurvey)).all() == []
