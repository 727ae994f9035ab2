"""Issue 6's "done when", end to end in the lab: a call answered by a headless softphone agent
yields a stereo recording that is registered, analysed, sampled for QA and reviewable. And issue
10's scripts and forms: a real softphone's call from a real agent campaign carries the script
(a Chinese list column in its SIP headers, the script fetched with the call's ticket) and the form
the agent answers ends up in the campaign's export.

The demo's own machinery is reused: `warmline.demo_agent.DemoDesk` (the API in this process and a
headless `warmline softphone --auto-answer --play <greeting>` for agent1) and the demo campaign's
spec and dialer loop (`warmline.demo_campaign`), for one contact whose lab callee (last digit 6)
presses 0 and is bridged to the agent. The bridge registers the recording itself. A private lab
(slot "recording_chain" in tests/lab.py) serves each database kind.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.db import Database
from core.secrets import get_secret
from core.settings import Settings
from dialer import campaigns as svc
from dialer.lists.export import contact_export_rows
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus, Contact
from recordings.analytics import analyze_file
from recordings.models import CallRecording, RecordingStatus
from recordings.qa import service as qa_service
from softphone.engine import Engine, EngineConfig
from softphone.phone import PhoneOptions, Softphone
from softphone.presence import AgentStatus, HttpPublisher
from softphone.provisioning import ServerClient
from tests.conftest import on_database
from tests.lab import lab_ports, private_lab
from tests.unit.test_forms_scripts import FORM_YAML
from tests.utils import until
from warmline.app import create_app
from warmline.demo import ensure_demo_users
from warmline.demo_agent import DEMO_AGENT, ApiServer, DemoDesk, make_greeting
from warmline.demo_campaign import ACTOR, FLOW, demo_spec, run_campaign
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PORTS = lab_ports("recording_chain")
CALLEE = "13800000016"  # last digit 6: presses 0 and talks to the agent
TALKER = "13800000019"  # last digit 9: answers and keeps talking (an agent campaign's callee)


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
    with private_lab(var, PORTS, database_url=db_url, topic_prefix=topic) as settings:
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


FORM_SCRIPT = "# 开场白\n{姓名}您好，我是{agent}，{社区}社区的工作人员。\n\n# 核对\n请问您多大年纪？"


async def _agent_answers_the_form(
    settings: Settings, db: Database, api_url: str, name: str
) -> dict[str, Any]:
    """agent1's real pjsua2 softphone takes the campaign's call, reads its script, answers its form
    (first with a mistake) and wraps up; returns what the phone saw."""
    password = get_secret(settings.var_dir, f"demo_password_{DEMO_AGENT}")
    server = ServerClient(api_url)
    await server.login(DEMO_AGENT, password)
    seen: dict[str, Any] = {}
    try:
        sip = await server.sip_account()
        async with Engine(EngineConfig(headless=True)) as engine:
            phone = Softphone(
                engine,
                AgentStatus(DEMO_AGENT, HttpPublisher(server)),
                server=server,
                options=PhoneOptions(auto_answer=True),
                on_wrapup=server.post_wrapup,
            )
            await phone.start(sip)
            try:
                await until(lambda: phone.registered, timeout=30, what="registered")
                quick = settings.model_copy(update={"dialer_ring_timeout": 20})
                dialling = asyncio.create_task(run_campaign(quick, db, name, out=None, limit_seconds=240))
                await until(lambda: phone.desk is not None and phone.desk.loaded, timeout=120, what="script")
                desk = phone.desk
                assert desk is not None
                main = next(c for c in phone.calls.values() if c.role == "main")
                seen["header_fields"] = dict(main.pop.fields) if main.pop else {}
                seen["script_html"], seen["fields"] = desk.script_html, dict(desk.fields)
                await until(lambda: main.status == "connected", timeout=30, what="connected")
                seen["tx_packets"] = await packets_sent(engine, main.id)
                seen["refused"] = not await phone.save_form({"reached": "yes", "age": "130"})
                seen["errors"] = dict(desk.errors)
                seen["saved"] = await phone.save_form({"reached": "yes", "age": "81"})
                await phone.act("hangup")
                await until(lambda: phone.wrapup is not None, timeout=30, what="wrap-up")
                await phone.act("wrapup", disposition="1", answers={"reached": "yes", "age": "81"})
                await dialling
            finally:
                await phone.close()
    finally:
        await server.aclose()
    return seen


async def packets_sent(engine: Engine, call: int, enough: int = 25) -> int:
    """RTP packets the phone has sent on `call`, once `enough` have gone (or what went in 10 s): a
    headless phone with nothing to play still sends (silence), or Asterisk's rtp_timeout cuts it."""
    sent = 0
    deadline = time.monotonic() + 10
    while sent < enough and time.monotonic() < deadline:
        sample = await engine.stats(call)
        sent = sample.tx_packets if sample else 0
        await asyncio.sleep(0.1)
    return sent


@on_database("postgresql")
def test_a_real_call_carries_the_script_and_its_form_reaches_the_export(db_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    upgrade(db_url)
    topic = f"warmline-test-{uuid.uuid4().hex[:8]}"
    with private_lab(var, PORTS, database_url=db_url, topic_prefix=topic) as settings:
        db = Database(settings.db_url)
        api = ApiServer(settings, db)
        try:
            ensure_demo_users(settings, db)
            name = "form-" + uuid.uuid4().hex[:6]
            data, _lines = svc.read_settings(FORM_YAML)
            spec = {
                "name": name, "kind": "agent", "windows": {"daily": ["00:00-24:00"]}, "amd": "retry",
                "script": FORM_SCRIPT, "form": data["form"], "max_attempts": 1,
            }  # fmt: skip
            with db.session() as session:
                svc.create_campaign(session, svc.build_spec(spec), actor=ACTOR)
            listed = f"姓名,电话,社区,身份证号\n杨磊,{TALKER},朝阳,110101194501011234\n".encode()
            assert import_list(db, name, io.BytesIO(listed), f"{name}.csv", actor=ACTOR).accepted == 1
            with db.session() as session:
                svc.set_status(session, name, CampaignStatus.running, actor=ACTOR)
            api.start()
            seen = asyncio.run(_agent_answers_the_form(settings, db, api.url, name))

            assert seen["header_fields"].get("社区") == "朝阳", "the Chinese column crossed real SIP"
            assert "身份证号" not in seen["header_fields"] and "身份证号" not in seen["fields"]
            assert "<h2>开场白</h2>" in seen["script_html"] and "杨磊您好" in seen["script_html"]
            assert "朝阳社区" in seen["script_html"]
            assert seen["refused"] and list(seen["errors"]) == ["age"] and seen["saved"]
            assert seen["tx_packets"] >= 25, "the headless phone sends RTP with nothing to play"
            with db.session() as session:
                campaign = svc.require_campaign(session, name)
                header, rows = contact_export_rows(session, campaign, mask=False)
                [row] = [dict(zip(header, r, strict=True)) for r in rows]
                masked_header, masked_rows = contact_export_rows(session, campaign, mask=True)
                [masked] = [dict(zip(masked_header, r, strict=True)) for r in masked_rows]
            assert (row["disposition"], row["answer.reached"], row["answer.age"]) == ("confirmed", "yes", 81)
            # a supervisor's export keeps the choices and withholds the free answers
            assert (masked["answer.reached"], masked["answer.age"]) == ("yes", "***")
            assert row["answer.visit_on"] == "" and "answer.note" in header
        finally:
            api.stop()
            db.dispose()
