"""Issue 6's "done when", end to end in the lab: a call answered by a headless softphone agent
yields a stereo recording that is registered, analysed, sampled for QA and reviewable.

The demo's own machinery is reused: `warmline.demo_agent.DemoDesk` (the API in this process and a
headless `warmline softphone --auto-answer --play <greeting>` for agent1) and the demo campaign's
spec and dialer loop (`warmline.demo_campaign`), for one contact whose lab callee (last digit 6)
presses 0 and is bridged to the agent. The bridge registers the recording itself. A private lab
(port base 17000: ARI 25088, SIP 22060, RTP 23000-23999) serves each database kind.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.db import Database
from core.secrets import get_secret
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus, Contact
from recordings.analytics import analyze_file
from recordings.models import CallRecording, RecordingStatus
from recordings.qa import service as qa_service
from tests.conftest import on_database
from tests.lab import private_lab
from warmline.app import create_app
from warmline.demo import ensure_demo_users
from warmline.demo_agent import DEMO_AGENT, DemoDesk, make_greeting
from warmline.demo_campaign import ACTOR, FLOW, demo_spec, run_campaign
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PORT_BASE = 17000
CALLEE = "13800000016"  # last digit 6: presses 0 and talks to the agent


def looped_talk_range(
    segments: list[tuple[float, float]], period: float, duration: float
) -> tuple[float, float]:
    """Least and most speech of a greeting looped every `period` s, over `duration` s, for any
    start phase (the playback starts when the softphone answers, the recording when bridged)."""
    totals = []
    steps = max(1, int(period / 0.05))
    for i in range(steps):
        phase = -i * period / steps
        total = 0.0
        k = 0
        while phase + k * period < duration:
            for s, e in segments:
                lo, hi = max(0.0, phase + k * period + s), min(duration, phase + k * period + e)
                total += max(0.0, hi - lo)
            k += 1
        totals.append(total)
    return min(totals), max(totals)


@on_database("sqlite")
def test_agent_call_recording_is_registered_analysed_sampled_and_reviewable(
    db_url: str, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    upgrade(db_url)
    topic = f"warmline-test-{uuid.uuid4().hex[:8]}"
    with private_lab(var, PORT_BASE, database_url=db_url, topic_prefix=topic) as settings:
        db = Database(settings.db_url)
        try:
            ensure_demo_users(settings, db)
            name = "chain-" + uuid.uuid4().hex[:6]
            with DemoDesk(settings, db, flow=FLOW, out=None) as desk:
                assert desk.ready, desk.problem
                with db.session() as session:
                    svc.create_campaign(session, svc.build_spec(demo_spec(name)), actor=ACTOR)
                csv = f"姓名,电话,clinic,date\n杨磊,{CALLEE},朝阳社区卫生服务中心,三月五日\n".encode()
                assert import_list(db, name, io.BytesIO(csv), f"{name}.csv", actor=ACTOR).accepted == 1
                with db.session() as session:
                    svc.set_status(session, name, CampaignStatus.running, actor=ACTOR)
                quick = settings.model_copy(update={"dialer_ring_timeout": 15})
                asyncio.run(run_campaign(quick, db, name, out=None, limit_seconds=240))

            with db.session() as session:
                contact = session.scalars(select(Contact)).one()
                assert contact.last_outcome == "agent"
                rec = session.scalars(
                    select(CallRecording).where(CallRecording.contact_id == contact.id)
                ).one()
                rec_id, duration, started_at = rec.id, rec.duration_s, rec.started_at
                assert rec.status is RecordingStatus.ok
                assert rec.channels == 2 and rec.sha256 and len(rec.sha256) == 64
                assert rec.agent == DEMO_AGENT
                assert rec.analytics is not None, rec.analytics_error
                analytics = rec.analytics
            assert duration is not None and duration > 3

            # The agent (left) says the looped greeting: its talk time must be within the documented
            # tolerance (docs/analytics.md, real calls: 0.3 s + 4 %) of the greeting's own speech,
            # measured by the same analytics on the clean file, looped and clipped to the call.
            greeting = analyze_file(make_greeting(settings))
            segments = [(float(s), float(e)) for s, e in greeting.mono_segments or []]
            assert segments
            low, high = looped_talk_range(segments, greeting.duration_s, duration)
            agent_talk = float(analytics["talk_s"]["agent"])
            customer_talk = float(analytics["talk_s"]["customer"])
            print(
                f"\nrecording {duration:.1f} s; agent talk {agent_talk:.2f} s, expected {low:.2f}-{high:.2f} s "
                f"(greeting {greeting.duration_s:.2f} s, speech {greeting.speech_s:.2f} s); "
                f"callee talk {customer_talk:.2f} s"
            )
            assert low - (0.3 + 0.04 * low) <= agent_talk <= high + 0.3 + 0.04 * high
            assert customer_talk > 2.0  # the lab callee speaks after pressing 0

            # QA: the random sample at rate 1.0 of the recording's ISO week (in the centre's zone; not
            # "this week", which is the next one if the call was just before midnight on a Sunday).
            week = started_at.astimezone(ZoneInfo(settings.timezone)).strftime("%G-W%V")
            params = qa_service.load_config().random.model_copy(update={"rate": 1.0})
            with db.session() as session:
                result = qa_service.draw_sample(session, settings, week, params=params, actor="test")
                assert rec_id in {i.recording_id for i in result.items}

            # Reviewable: the queue page renders for a qa user; the audio plays and is audited.
            qa_password = get_secret(settings.var_dir, "demo_password_qa1")
            with TestClient(create_app(settings, db)) as client:
                login = client.post(
                    "/login", data={"username": "qa1", "password": qa_password}, follow_redirects=False
                )
                assert login.status_code == 303
                page = client.get("/console/reviews")
                assert page.status_code == 200 and DEMO_AGENT in page.text
                token = client.post("/api/auth/token", json={"username": "qa1", "password": qa_password})
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                audio = client.get(f"/api/recordings/{rec_id}/audio", headers=headers)
                assert audio.status_code == 200
                assert audio.headers["content-type"].startswith("audio/wav")
                assert audio.content[:4] == b"RIFF"
            with db.session() as session:
                plays = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "recording.play")))
                assert [(p.actor, p.target) for p in plays] == [("qa1", rec_id)]
        finally:
            db.dispose()
