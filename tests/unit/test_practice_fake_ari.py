"""Practice calls on the fake Asterisk (SQLite and PostgreSQL), in milliseconds of virtual time.

- the four Chinese scenarios load, and the runner speaks each line then waits for the trainee;
  the trainee hanging up ends it at once;
- a practice call is one originate, to the agent's own endpoint into ``warmline-practice``, never
  a trunk or a number; once answered the Stasis handler plays the scenario, hangs up and registers
  the stereo recording marked ``practice`` (source ``practice``, the agent's own);
- QA never samples it as a real call; a trainer puts it up and scores it with the scorecards, its
  score kept apart from the random sample's averages;
- the API: a trainee starts one from the desk and lists their own, each with where to play it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents import profiles
from agents.help import api as help_api
from core.ari_events import EventDispatcher
from core.auth.models import Role
from core.auth.service import create_user
from core.db import Database
from core.features import ServiceContext, StasisContext
from core.settings import Settings
from recordings.models import CallRecording
from recordings.qa import reviews
from recordings.qa.practice import put_up_practice
from recordings.qa.service import candidates
from tests.fakes.ari import Callee, FakeAri, FakeAsterisk, FakeChannel
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.utils import login, until
from tests.utils.agents import AGENT_PASSWORD, endpoint_of, make_agents
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app
from warmline.cli import app
from workforce.practice import service
from workforce.practice.models import PracticeCall
from workforce.practice.runner import run_scenario
from workforce.practice.scenarios import CONFIG_DIR, scenario, scenarios

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
LINE_SECONDS = 2.0  # every spoken line lasts this long (silent prompts)


# ------------------------------------------------------------------------------ scenarios, runner


def test_the_four_chinese_scenarios_load() -> None:
    found = scenarios()
    assert set(found) == {"confused_elder", "angry_caller", "census_household", "vaccination_question"}
    assert {p.stem for p in CONFIG_DIR.glob("*.yaml")} == set(found)
    for s in found.values():
        assert s.voice == "cmn" and len(s.steps) >= 3
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in step.say) for step in s.steps), s.name
        assert all(step.listen > 0 for step in s.steps), "the trainee always gets a turn"


def _speaker(spoken: list[str]) -> Callable[[str, str], Any]:
    async def speak(text: str, voice: str) -> str:
        spoken.append(text)
        return f"sound:/prompts/{len(spoken)}"

    return speak


@pytest.mark.parametrize("hangup_at", [None, 7.0])
def test_the_runner_speaks_each_line_then_waits_for_the_trainee(hangup_at: float | None) -> None:
    elder = scenario("confused_elder")

    async def main() -> tuple[Any, list[str], list[str], float]:
        asterisk = FakeAsterisk(play_seconds=LINE_SECONDS)
        ari = asterisk.client()
        dispatcher = EventDispatcher()
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        await dispatcher.connected.wait()
        asterisk.place("agent-1", "PJSIP/ag-tao", stage="stasis", args=("practice", "1"))
        loop = asyncio.get_running_loop()
        if hangup_at is not None:
            loop.call_later(hangup_at, lambda: asterisk.hangup_by_callee("agent-1"))
        spoken: list[str] = []
        t0 = loop.time()
        with dispatcher.subscription("agent-1") as events:
            result = await run_scenario(ari, "agent-1", elder, events, _speaker(spoken))
        took = loop.time() - t0
        pump.cancel()
        media = [str(r.params.get("media")) for r in asterisk.calls("play")]
        return result, spoken, media, took

    result, spoken, media, took = run_virtual(main())
    if hangup_at is None:
        assert (result.played, result.ended_by) == (len(elder.steps), "scenario")
        assert spoken == [step.say for step in elder.steps] and len(media) == len(elder.steps)
        assert took == pytest.approx(len(elder.steps) * LINE_SECONDS + elder.seconds(), abs=0.5)
    else:
        # line 1 (2 s), pause 6 s: the trainee hangs up at 7 s, during the first pause
        assert (result.played, result.ended_by) == (1, "agent")
        assert took == pytest.approx(hangup_at, abs=0.1)


# ------------------------------------------------------------------------------ the whole call


def practice_dialplan(settings: Settings, asterisk: FakeAsterisk) -> Callable[[FakeChannel], None]:
    """What ``warmline-practice`` does once the agent answers: MixMonitor writes the two sides (1 s
    of tone each: 700 Hz the agent, 300 Hz the scenario), then Stasis(warmline,practice,<id>)."""

    def run(channel: FakeChannel) -> None:
        base = settings.recordings_dir.resolve() / channel.variables["WARMLINE_REC_FILE"]
        base.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(8000) / 8000
        for side, hz in (("agent", 700), ("customer", 300)):
            tone = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
            sf.write(f"{base}-{side}.wav", tone, 8000, subtype="PCM_16")
        asterisk.enter_stasis(channel.id, ["practice", channel.variables["WARMLINE_PRACTICE"]])

    return run


def _route_practice(
    settings: Settings, db: Database, ari: FakeAri, dispatcher: EventDispatcher, prompts: Path
) -> set[Any]:
    """What the worker following the node does with a StasisStart nobody follows: the handler."""
    handler = service.practice_handler(lambda s: SilentPrompts(prompts, seconds=LINE_SECONDS))
    tasks: set[Any] = set()

    def unrouted(event: dict[str, Any]) -> None:
        if event.get("type") != "StasisStart" or (event.get("args") or [None])[0] != service.PRACTICE_ARG:
            return
        dispatcher.subscribe(event["channel"]["id"])
        ctx = StasisContext("node-1", ari, dispatcher, ServiceContext(settings, db, None))
        task = asyncio.ensure_future(handler(ctx, event))
        tasks.add(task)

    dispatcher.unrouted = unrouted
    return tasks


def _trainee(db: Database) -> None:
    make_agents(db, {"tao": []})
    with db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="trainee")
        create_user(s, "qin", Role.qa, AGENT_PASSWORD, actor="test")


def test_a_practice_call_rings_only_the_trainee_plays_and_is_recorded_as_practice(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    _trainee(db)
    tao = endpoint_of(db, "tao")

    async def main() -> tuple[service.Started, FakeAsterisk]:
        asterisk = FakeAsterisk(callees={tao: Callee(answer_after=1.0)})
        ari = asterisk.client()
        dispatcher = EventDispatcher()
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        await dispatcher.connected.wait()
        asterisk.dialplan[service.PRACTICE_CONTEXT] = practice_dialplan(settings, asterisk)
        tasks = _route_practice(settings, db, ari, dispatcher, tmp_path / "prompts")
        started = await service.start(db, settings, [ari], "tao", "angry_caller", actor="tao", now=T0)
        await until(lambda: tasks, timeout=30, what="the trainee answers into the practice handler")
        await asyncio.gather(*tasks)
        pump.cancel()
        return started, asterisk

    started, asterisk = run_virtual(main())
    [originate] = asterisk.calls("originate")
    assert originate.params["endpoint"] == tao, "the trainee's own phone, nothing else"
    assert (originate.params["context"], originate.params["extension"]) == ("warmline-practice", "s")
    assert originate.body is not None and originate.body["variables"]["WARMLINE_PRACTICE"] == str(started.id)
    endpoints = {c.params.get("endpoint") for c in asterisk.requests if c.op == "originate"}
    assert endpoints == {tao} and not any("lab-pstn" in str(e) for e in endpoints), "no PSTN channel"
    angry = scenario("angry_caller")
    assert len(asterisk.calls("play")) == len(angry.steps), "every line of the scenario was played"
    assert started.channel_id in asterisk.destroyed, "hung up by the service at the end"

    with db.session() as s:
        row = s.get(PracticeCall, started.id)
        assert row is not None and row.state == "done" and row.result == "5/5 lines; ended by scenario"
        rec = s.get(CallRecording, started.recording_id)
        assert rec is not None and rec.practice and rec.source == "practice" and rec.agent == "tao"
        assert rec.channels == 2 and rec.attempt_id == started.channel_id
        assert candidates(s, T0 - timedelta(days=1), T0 + timedelta(days=1)) == [], "never sampled"
        [listed] = service.practice_calls(s, T0, "tao")
        assert listed["audio_url"] == f"/api/recordings/{rec.id}/audio" and listed["title"] == "愤怒的来电者"

    # A trainer scores it with the QA scorecards; its score stays out of the random averages.
    with db.session() as s:
        item = put_up_practice(s, started.recording_id, scenario="angry_caller", actor="boss")
        assert put_up_practice(s, started.recording_id, scenario="angry_caller", actor="boss").id == item.id
        review = reviews.claim(s, item.id, "qin")
        assert review.scorecard == "general_call"
        answers = {"greeting": "yes", "identity": "yes", "accuracy": "yes", "clarity": 3, "next_steps": "yes"}
        done = reviews.complete(s, review.id, "qin", answers)
        assert done.score is not None
        [mean] = reviews.averages(s)["agents"]
        assert mean["random"] is None and mean["practice"]["reviews"] == 1


def test_no_answer_leaves_no_recording_and_asterisk_refusing_is_said(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    _trainee(db)
    tao = endpoint_of(db, "tao")

    async def main() -> tuple[service.Started, str]:
        asterisk = FakeAsterisk(callees={tao: Callee(answer_after=None)})
        ari = asterisk.client()
        started = await service.start(db, settings, [ari], "tao", "census_household", actor="cli", now=T0)
        with pytest.raises(service.PracticeError, match="已有"):
            await service.start(db, settings, [ari], "tao", "census_household", actor="cli", now=T0)
        asterisk.fail("originate", 0, "Allocation failed")
        later = T0 + timedelta(minutes=2)  # the first one was never answered: no longer ringing
        with pytest.raises(service.PracticeError) as refused:
            await service.start(db, settings, [ari], "tao", "census_household", actor="cli", now=later)
        return started, refused.value.code

    _started, code = run_virtual(main())
    assert code == "asterisk"
    with db.session() as s:
        later = T0 + timedelta(minutes=5)
        states = [c["state"] for c in service.practice_calls(s, later, "tao")]
        assert sorted(states) == ["failed", "not_answered"]
        assert s.scalar(select(CallRecording)) is None
    left = [p for p in settings.recordings_dir.rglob("*") if p.is_file()]
    assert left == [], "an unanswered practice call leaves nothing in the recordings folder"
    with pytest.raises(service.PracticeError, match="练习场景"), db.session() as s:
        service.begin(s, settings, "tao", "no-such", actor="cli", now=T0)


# ------------------------------------------------------------------------------ the API


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    _trainee(db)
    asterisk = FakeAsterisk(callees={endpoint_of(db, "tao"): Callee(answer_after=None)})
    app = create_app(settings, db)

    async def fake_aris() -> list[Any]:
        return [asterisk.client()]

    app.dependency_overrides[help_api.ari_clients] = fake_aris
    with TestClient(app) as c:
        yield c


def test_a_trainee_starts_practice_from_the_desk_and_lists_their_own(client: TestClient) -> None:
    tao = login(client, "tao", AGENT_PASSWORD)
    names = [s["name"] for s in client.get("/api/practice/scenarios", headers=tao).json()]
    assert "vaccination_question" in names
    resp = client.post("/api/agents/me/practice", headers=tao, json={"scenario": "vaccination_question"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["state"] == "ringing" and "没有真实市民" in resp.json()["message"]
    again = client.post("/api/agents/me/practice", headers=tao, json={"scenario": "angry_caller"})
    assert again.status_code == 409 and again.json()["detail"]["code"] == "busy", "one at a time"
    bad = client.post("/api/agents/me/practice", headers=tao, json={"scenario": "nope"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "scenario"
    [mine] = client.get("/api/agents/me/practice", headers=tao).json()
    assert (mine["scenario"], mine["agent"], mine["recording_id"]) == ("vaccination_question", "tao", None)
    assert client.get("/api/practice", headers=tao).status_code == 403, "others' practice is trainers' only"
    qin = login(client, "qin", AGENT_PASSWORD)
    assert [c["agent"] for c in client.get("/api/practice?agent=tao", headers=qin).json()] == ["tao"]
    refused = client.post(f"/api/practice/{mine['id']}/review", headers=qin)
    assert refused.status_code == 409, "nothing recorded yet"


# ------------------------------------------------------------------------------ the command line


def test_the_command_line_lists_scenarios_and_refuses_an_unknown_one(cli: CliRunner, db: Database) -> None:
    _trainee(db)
    listed = json.loads(ok(cli, "practice", "scenarios", "--json").stdout)
    assert [s["name"] for s in listed] == sorted(s["name"] for s in listed) and len(listed) == 4
    assert "糊涂的老人" in ok(cli, "practice", "scenarios").stdout
    result = cli.invoke(app, ["practice", "start", "--agent", "tao", "--scenario", "nope"])
    assert result.exit_code == 2 and "nope" in result.stderr
    result = cli.invoke(app, ["practice", "start", "--agent", "ghost", "--scenario", "angry_caller"])
    assert result.exit_code == 2 and "ghost" in result.stderr
    assert json.loads(ok(cli, "practice", "list", "--json").stdout) == []
    assert cli.invoke(app, ["practice", "review", "7"]).exit_code == 2
