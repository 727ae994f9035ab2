"""Issue 15's wellbeing lines against the real lab (slot ``wellbeing``; the agents are baresip,
auto-answering, as in test_bridge_lab):

- an OUTBOUND agent campaign with ``survey: true``: the dialer's worker calls the lab's survey
  callee (config/asterisk/extensions.conf, ``lab-survey``: numbers 8619999…, pressing the number's
  last digit, here 4), hands the live answer to mei, mei hangs up first, the callee is kept, hears
  the survey and presses 4; the score is stored with the attempt, mei and the campaign, and is on
  mei's report (the inbound line's case is test_survey_lab); the comment the callee recorded after
  the score is erased with their number (the file gone, the erasure audited, the score kept);
- a flagged call: mei flags a live call as abusive through the service's API
  (``POST /api/agents/me/calls/{ref}/abusive``); the call ends with the closing prompt, her cool-down
  starts; the next caller is not offered to her although she is available (her phone never rings,
  the caller waits and gives up). That calls come again once the rest is over is on the fake
  Asterisk (tests/unit/test_cooldown_after_call_fake_ari.py), not worth half a minute of lab here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.handover import CallOrigin, Handover, HandoverDeps, HandoverRequest, QueuePolicy, SkillQueues
from agents.help.models import AgentCooldown
from agents.routing import set_state
from agents.states import current_state
from core.audit import AuditEntry
from core.db import Database, utcnow
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, CampaignStatus, Contact
from hotline.config import InboundConfig
from ivr.models import CallSurvey
from recordings.at_rest import voice_message_files
from tests.integration import test_bridge_lab as bridge
from tests.integration.test_bridge_lab import PW, customer_call, make_available, runtime
from tests.lab import lab_ports
from tests.utils import until
from warmline.app import create_app
from warmline.privacy import service as privacy
from workforce.reports import report

pytestmark = pytest.mark.integration
lab = bridge.lab
db = bridge.db
agents = bridge.agents
PORTS = lab_ports("wellbeing")
CAMPAIGN = "survey-out"
SURVEY_CALLEE = "+8619999000004"  # lab-survey: presses 4
TALK_S = 3.0
REST_MIN = 0.5  # 30 s of rest after the flagged call: the next caller comes and goes within it


def on_call(db: Database, name: str) -> bool:
    with db.session() as s:
        st = current_state(s, name)
        return st is not None and st.state == "on_call"


def make_campaign(db: Database) -> int:
    spec = {
        "name": CAMPAIGN, "kind": "agent", "mode": "progressive", "skill": "vaccination", "survey": True,
        "survey_comment_seconds": 5,
        "caller_id": "4001234567", "windows": {"daily": ["00:00-24:00"]}, "max_attempts": 1,
    }  # fmt: skip
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="test")
        campaign.status = CampaignStatus.running
        s.add(Contact(campaign_id=campaign.id, phone_e164=SURVEY_CALLEE, name="张三"))
        s.flush()
        return campaign.id


def test_the_callee_of_an_outbound_agent_call_presses_4_and_it_is_on_mei_s_report(
    lab: Settings, db: Database, agents: dict[str, object]
) -> None:
    with db.session() as s:
        set_state(s, "lin", "logged_out", "test")
    make_available(db, "mei")
    campaign_id = make_campaign(db)

    async def scenario() -> Attempt:
        worker = DialerWorker(lab, db, campaigns={CAMPAIGN})
        task = asyncio.create_task(worker.run())
        try:
            await until(lambda: task.done() or on_call(db, "mei"), timeout=60, what="mei takes the call")
            assert not task.done(), task
            await asyncio.sleep(TALK_S)  # they talk
            async with bridge.client(lab) as ari:  # requests only: the worker's is the one event stream
                legs = [c["id"] for c in await ari.channels() if str(c["id"]).startswith("agent-")]
                assert legs, "mei's leg is up"
                for leg in legs:  # mei hangs up first
                    await ari.hangup(leg)

            def scored() -> CallSurvey | None:
                with db.session() as s:
                    return s.scalar(select(CallSurvey))

            await until(lambda: scored() is not None, timeout=40, what="the survey's score")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with db.session() as s:
            attempt = s.scalar(select(Attempt).where(Attempt.campaign_id == campaign_id))
            assert attempt is not None
            s.expunge(attempt)
            return attempt

    attempt = asyncio.run(scenario())
    assert attempt.agent == "mei", attempt
    with db.session() as s:
        [row] = s.scalars(select(CallSurvey))
        assert (row.call_ref, row.agent, row.campaign, row.line, row.score) == (
            attempt.id, "mei", CAMPAIGN, None, 4,
        )  # fmt: skip
        day = row.answered_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
        rows = report(s, InboundConfig(), day, day, group="agent", now=datetime.now(ZoneInfo("UTC")))["rows"]
    mei = next(r for r in rows if r["name"] == "mei")
    assert (mei["satisfaction"], mei["surveys"]) == (4.0, 1), mei

    # The callee's recorded comment (Asterisk recorded it after the score) is theirs: erased with
    # their number (warmline.privacy, as `warmline privacy erase` runs it), audited; the score stays.
    comment = row.comment_recording
    assert comment is not None and comment.startswith("ivr-"), "the callee left a comment"
    assert voice_message_files(lab, comment), "its file is on disk"
    with db.session() as s:
        found = privacy.find(s, SURVEY_CALLEE)
        assert privacy.erase(s, lab, found, actor="test", dry_run=False)["recordings"] >= 1
    assert voice_message_files(lab, comment) == [], "the caller's voice is gone"
    with db.session() as s:
        [kept] = s.scalars(select(CallSurvey))
        assert (kept.score, kept.agent, kept.comment_recording) == (4, "mei", None)
        log = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).one()
        assert log.detail["survey_comments"] == 1


def test_a_flagged_call_rests_mei_and_no_call_is_offered_until_the_rest_is_over(
    lab: Settings, db: Database, agents: dict[str, object]
) -> None:
    lab.help_cooldown_minutes = REST_MIN
    with db.session() as s:
        set_state(s, "lin", "logged_out", "test")
    make_available(db, "mei")
    app = create_app(lab, db)

    async def scenario(api: TestClient, token: dict[str, str]) -> dict[str, Any]:
        async with runtime(lab) as (ari, dispatcher):
            handover = Handover(HandoverDeps(ari, dispatcher, db, lab, queues=SkillQueues()))

            async def offer(timeout: float) -> Any:  # noqa: ASYNC109
                customer = await customer_call(ari, dispatcher)
                request = HandoverRequest(
                    customer, skill="vaccination", origin=CallOrigin(attempt_id=customer),
                    policy=QueuePolicy(timeout=timeout, moh=None),
                )  # fmt: skip
                return customer, asyncio.create_task(handover.connect(request))

            flagged, first = await offer(30)
            await until(lambda: first.done() or on_call(db, "mei"), timeout=60, what="mei takes the call")
            await asyncio.sleep(TALK_S)
            answer = await asyncio.to_thread(
                api.post, f"/api/agents/me/calls/{flagged}/abusive", headers=token
            )
            assert answer.status_code == 200, answer.text
            ended = (await asyncio.wait_for(first, 30), time.monotonic())
            make_available(db, "mei")  # her phone says she is ready: routing must still hold back
            _, second = await offer(4)
            waited = await asyncio.wait_for(second, 30)
            over, done_at = time.monotonic(), utcnow()
            with db.session() as s:
                rest = s.scalar(select(AgentCooldown))
            return {
                "answer": answer.json(), "first": ended[0], "second": waited, "rest": rest,
                "second_over_after_s": over - ended[1], "second_done_at": done_at,
            }  # fmt: skip

    api = TestClient(app)  # requests only: no workers (the test's runtime is the one ARI event stream)
    got = api.post("/api/auth/token", json={"username": "mei", "password": PW})
    token = {"Authorization": f"Bearer {got.json()['access_token']}", "Accept-Language": "zh-CN"}
    seen = asyncio.run(scenario(api, token))
    assert seen["answer"]["ended"] is True, "the service found mei's call and ended it"
    assert "分钟休息时间" in seen["answer"]["message"]
    assert seen["first"].outcome == "connected" and seen["first"].agent == "mei"
    rest = seen["rest"]
    assert (rest.agent, rest.reason) == ("mei", "abusive")
    assert seen["second"].outcome == "abandoned", seen["second"]
    assert seen["second"].agents_tried == [], "mei's phone never rang during her rest"
    assert seen["second_done_at"] < rest.until, "all of it within the rest"
    print(
        f"\nflagged call: the next caller waited and gave up {seen['second_over_after_s']:.1f} s after it ended"
    )
