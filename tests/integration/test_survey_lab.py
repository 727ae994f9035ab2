"""The post-call survey against the real lab (slot 19): a lab caller dials the hotline, presses 1 and
talks to mei (a baresip agent); mei hangs up first; the hand-over keeps the caller, who hears the
survey and presses 4; the score is stored with the call, mei and the line, and is on mei's report.
The branches (no survey configured, no key) are on the fake Asterisk in
tests/unit/test_survey_fake_ari.py. Same lab and agents as test_bridge_lab and test_inbound_lab."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import pytest
from sqlalchemy import select

from agents.states import current_state
from core.db import Database
from core.settings import Settings
from hotline.config import InboundConfig, InboundNumber
from hotline.service import InboundResult
from ivr.models import CallSurvey
from tests.integration import test_bridge_lab as bridge
from tests.integration.test_bridge_lab import make_available
from tests.integration.test_inbound_lab import HOTLINE, call_in, finished, hotline, seconds_of
from tests.lab import lab_ports
from workforce.reports import report

pytestmark = pytest.mark.integration
lab = bridge.lab
db = bridge.db
agents = bridge.agents
PORTS = lab_ports("survey")
SURVEYED = InboundConfig(
    timezone="Asia/Shanghai",
    numbers={
        HOTLINE: InboundNumber(
            name="community-hotline", hours={"daily": ["00:00-23:59"]}, queue_timeout=30, survey=True
        )
    },
)


def test_the_caller_presses_4_after_the_agent_hangs_up(
    lab: Settings, db: Database, agents: dict[str, object]
) -> None:
    make_available(db, "mei", "lin")

    async def scenario() -> InboundResult:
        async with hotline(lab, db, SURVEYED) as world:
            welcome = await seconds_of(world, "hotline_menu", "welcome")
            await seconds_of(world, "post_call_survey", "rate")  # rendered ahead, as the service does
            caller, _events = await call_in(world)
            await asyncio.sleep(welcome + 2.0)  # the menu is playing: press 1 (barge-in)
            # A loaded machine starts the flow later: a key pressed during the welcome (which takes
            # none) is lost, so press 1 again every 3 s until mei is rung (baresip answers at once).
            deadline = time.monotonic() + 45
            pressed_at = -1e9
            while True:
                with db.session() as s:
                    st = current_state(s, "mei")
                if st is not None and st.state == "on_call":
                    break
                assert time.monotonic() < deadline, "mei was rung"
                if time.monotonic() - pressed_at >= 3.0:
                    await world.ari.send_dtmf(caller, "1")
                    pressed_at = time.monotonic()
                await asyncio.sleep(0.3)
            await asyncio.sleep(3)  # they talk
            legs = [c["id"] for c in await world.ari.channels() if str(c["id"]).startswith("agent-")]
            assert legs, "mei's leg is up"
            for leg in legs:  # mei hangs up first
                await world.ari.hangup(leg)
            await asyncio.sleep(3)  # the survey's question is playing: press 4 (barge-in)
            await world.ari.send_dtmf(caller, "4")
            return await finished(world)

    result = asyncio.run(scenario())
    assert result.outcome == "agent" and result.bridge is not None and result.bridge.agent == "mei"
    assert result.bridge.caller_kept and result.detail.get("survey") == 4, result
    with db.session() as s:
        [row] = s.scalars(select(CallSurvey))
        assert (row.agent, row.line, row.score, row.call_ref) == (
            "mei",
            "community-hotline",
            4,
            result.channel_id,
        )
        day = date(2026, 11, 24)  # the hotline clock of test_inbound_lab: a Tuesday, 10:00
        rows = report(s, SURVEYED, day, day, group="agent", now=row.answered_at)["rows"]
    mei = next(r for r in rows if r["name"] == "mei")
    assert (mei["satisfaction"], mei["surveys"]) == (4.0, 1)
