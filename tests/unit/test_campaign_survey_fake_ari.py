"""The post-call survey on an outbound agent campaign (``survey: true``), on the fake Asterisk in
virtual time (both databases): `dialer.engine.calls.Call` hands the answered callee to mei with the
caller kept; mei hangs up first, the callee hears the survey and presses 4; the dialer's runtime
stores the score with the attempt, mei and the campaign. The score is on mei's report and in the
campaign's export. Without the survey the callee's call ends with the agent's."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from agents.handover import Handover, HandoverDeps, SkillQueues
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.campaigns import CampaignSpec, get_campaign
from dialer.engine.calls import Call, CallPlan, CallReport
from dialer.engine.ledger import Claimed, claim
from dialer.engine.runtime import DialerWorker
from dialer.lists.export import contact_export_rows
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus, Contact
from hotline.config import InboundConfig
from ivr.check import REPO_FLOWS, load_flow
from ivr.models import CallSurvey
from ivr.runner import FlowRunner
from ivr.survey import SURVEY_FLOW, survey_flow
from tests.fakes.ari import Callee
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.utils import until
from tests.utils.agents import available, fake_node, make_agents
from workforce.reports import report

CAMPAIGN = "flu-followup"
CALLEE = "Local/8613900000001@lab-pstn"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
AGENT_HANGS_UP = Callee(answer_after=0.5, hangup_on="answer", hangup_after=20)
SURVEY = load_flow(REPO_FLOWS / f"{SURVEY_FLOW}.yaml")
COMMENT_SECONDS = 8


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    make_agents(db, {"mei": []})
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def campaign(db: Database, survey: bool) -> Claimed:
    """An agent campaign with one contact, claimed for its first call."""
    spec = {"name": CAMPAIGN, "kind": "agent", "survey": survey, "windows": {"daily": ["00:00-24:00"]}}
    with db.session() as s:
        svc.create_campaign(s, svc.build_spec(spec), actor="test")
    import_list(db, CAMPAIGN, io.BytesIO("name,phone\n张三,13900000001\n".encode()), "list.csv", actor="test")
    with db.session() as s:
        svc.set_status(s, CAMPAIGN, CampaignStatus.running, actor="test")
        s.execute(update(Contact).values(next_due_at=None))  # due now on the test's clock
        found = get_campaign(s, CAMPAIGN)
        assert found is not None
        [claimed] = claim(s, found, 1, NOW, node="lab")
    return claimed


def plan(survey: bool, comment: int | None = None) -> CallPlan:
    return CallPlan(
        campaign=CAMPAIGN, endpoint=CALLEE, app="warmline", amd_policy="retry", flow=None,
        caller_id=None, ring_timeout=30, agent_campaign=True, survey=survey_flow(SURVEY, comment) if survey else None,
    )  # fmt: skip


def run(
    settings: Settings, db: Database, c: Claimed, survey: bool, key: str | None, comment: int | None = None
) -> CallReport:
    worker = DialerWorker(settings, db, now=lambda: NOW)

    async def main() -> CallReport:
        async with fake_node(settings, db, {"mei": AGENT_HANGS_UP}) as node:
            node.asterisk.callee(CALLEE, Callee(answer_after=1.0))
            notes: list[asyncio.Task[None]] = []

            async def notify(kind: str, detail: dict[str, Any]) -> None:
                if kind == "survey":  # as the runtime's notify does
                    notes.append(asyncio.create_task(worker._scored(c, detail)))

            runner = FlowRunner(node.ari, SilentPrompts(settings.var_dir / "prompts"))
            handover = Handover(HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues()))
            call = Call(
                node.ari,
                node.dispatcher,
                runner,
                plan(survey, comment),
                c.attempt_id,
                {},
                notify,
                handover=handover,
            )
            task = asyncio.create_task(call.run())

            def agent_legs() -> list[str]:
                return [ch for ch in node.asterisk.channels if ch.startswith("agent-")]

            await until(agent_legs, timeout=60, what="mei's phone rings")
            await until(lambda: not agent_legs(), timeout=60, what="mei hangs up")
            if key is not None:
                await until(lambda: node.asterisk.calls("play", c.attempt_id), timeout=10, what="the survey")
                node.asterisk.press(c.attempt_id, key)
            done = await task
            await asyncio.gather(*notes)
            return done

    return run_virtual(main())


def test_the_callee_rates_the_agent_campaigns_call(settings: Settings, db: Database) -> None:
    c = campaign(db, survey=True)
    available(db, "mei")
    done = run(settings, db, c, survey=True, key="4")
    assert done.flow_outcome == "agent" and done.detail["survey"] == 4
    with db.session() as s:
        [row] = s.scalars(select(CallSurvey))
        assert (row.call_ref, row.agent, row.campaign, row.line, row.score) == (
            c.attempt_id, "mei", CAMPAIGN, None, 4,
        )  # fmt: skip
        day = date(2026, 11, 24)
        mei = report(s, InboundConfig(), day, day, group="agent", now=NOW)["rows"][0]
        found = get_campaign(s, CAMPAIGN)
        assert found is not None
        header, rows = contact_export_rows(s, found, mask=True)
        exported = dict(zip(header, next(rows), strict=True))
    assert (mei["name"], mei["satisfaction"], mei["surveys"]) == ("mei", 4.0, 1)
    assert exported["survey"] == 4


def test_no_survey_ends_the_callees_call_with_the_agent(settings: Settings, db: Database) -> None:
    c = campaign(db, survey=False)
    available(db, "mei")
    done = run(settings, db, c, survey=False, key=None)
    assert done.flow_outcome == "agent" and "survey" not in done.detail
    with db.session() as s:
        assert s.scalars(select(CallSurvey)).all() == []
        found = get_campaign(s, CAMPAIGN)
        assert found is not None
        header, _rows = contact_export_rows(s, found, mask=True)
    assert "survey" not in header


def test_the_campaign_survey_key_is_validated_like_the_lines() -> None:
    spec = CampaignSpec(name=CAMPAIGN, survey=True)
    assert spec.survey and not CampaignSpec(name=CAMPAIGN).survey
    with pytest.raises(ValidationError, match="survey"):
        CampaignSpec(name=CAMPAIGN, survey="sometimes")


def test_the_callee_leaves_a_recorded_comment_after_the_score(settings: Settings, db: Database) -> None:
    c = campaign(db, survey=True)
    available(db, "mei")
    done = run(settings, db, c, survey=True, key="5", comment=COMMENT_SECONDS)
    assert done.detail["survey"] == 5
    name = done.detail["survey_comment"]
    assert name.startswith("ivr-"), "an IVR voice message: sealed at rest like the others"
    with db.session() as s:
        [row] = s.scalars(select(CallSurvey))
        assert (row.call_ref, row.score, row.comment_recording) == (c.attempt_id, 5, name)


def test_without_comment_seconds_the_score_goes_straight_to_the_thanks() -> None:
    plain, asked = survey_flow(SURVEY, None), survey_flow(SURVEY, COMMENT_SECONDS)
    assert getattr(plain.nodes["rate"], "next", None) == "thanks"
    assert getattr(asked.nodes["rate"], "next", None) == "comment"
    assert getattr(asked.nodes["comment"], "max_seconds", None) == COMMENT_SECONDS
    with pytest.raises(ValidationError, match="survey_comment_seconds"):
        CampaignSpec(name=CAMPAIGN, survey=True, survey_comment_seconds=600)
