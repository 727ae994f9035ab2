"""A practice call against the real lab (slot "practice"): a trainee's phone (baresip, sending a
700 Hz tone) is rung by the service through the API (``POST /api/agents/me/practice``) and answers;
the practice dialplan records the call and hands it to the Stasis handler the workforce plugin
registers, which speaks the vaccination scenario in Chinese (espeak-ng, voice cmn). The trainee
hangs up after the second line. Checked: the trainee's phone heard speech; every line played was
made from the scenario's Chinese text; the stereo recording is registered, marked practice, with
the trainee's tone on the left and the simulated caller's speech on the right; and no channel on
Asterisk was ever anything but the trainee's own endpoint -- no lab-pstn, no Local channel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from agents import profiles
from core.ari_events import EventDispatcher
from core.auth.models import Role
from core.db import Database
from core.features import Registry, ServiceContext, StasisContext
from core.settings import Settings
from ivr.tts import PromptCache
from recordings.models import CallRecording
from recordings.service import open_recording
from tests.integration.test_bridge_lab import band_energy, endpoint_online, rms_dbfs
from tests.integration.test_help_lab import PW, client, phone
from tests.lab import lab_ports, private_lab
from tests.utils import login
from warmline.app import create_app
from warmline.migrate import upgrade
from workforce.plugin import register
from workforce.practice.models import PracticeCall
from workforce.practice.scenarios import scenario

pytestmark = pytest.mark.integration
PORTS = lab_ports("practice")
TRAINEE_HZ = 700
SCENARIO = "vaccination_question"
LINES_HEARD = 2  # the trainee hangs up once the caller has said this many lines
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("practice-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    upgrade(url)
    with private_lab(var, PORTS, database_url=url) as settings:
        yield settings


def test_a_practice_call_reaches_the_trainee_speaks_chinese_is_recorded_and_dials_no_one_else(
    lab: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    started = time.monotonic()
    db = Database(lab.db_url)
    tao_ep, tao = phone(lab, db, tmp_path_factory.mktemp("phones"), "tao", Role.agent, TRAINEE_HZ)
    with db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="trainee")
    registry = Registry()
    register(registry)
    app = create_app(lab, db)
    try:

        async def run() -> dict[str, Any]:
            seen: dict[str, Any] = {"channels": set(), "played": []}
            async with client(lab) as ari:
                assert await endpoint_online(ari, tao_ep), f"{tao_ep} registered"
                tasks: list[asyncio.Task[None]] = []
                dispatcher = EventDispatcher()

                def unrouted(event: dict[str, Any]) -> None:  # what the dialer worker does
                    args = event.get("args") or []
                    handler = (
                        registry.stasis.get(str(args[0]))
                        if event.get("type") == "StasisStart" and args
                        else None
                    )
                    if handler is not None:
                        dispatcher.subscribe(str(event["channel"]["id"]))
                        ctx = StasisContext("lab", ari, dispatcher, ServiceContext(lab, db, None))
                        tasks.append(asyncio.ensure_future(handler(ctx, event)))

                dispatcher.unrouted = unrouted
                deliver = dispatcher.dispatch

                def dispatch(event: dict[str, Any]) -> int:  # note what was played, then deliver it
                    if event.get("type") == "PlaybackStarted":
                        seen["played"].append(event["playback"]["media_uri"])
                    return deliver(event)

                dispatcher.dispatch = dispatch  # type: ignore[method-assign]
                pump = asyncio.create_task(dispatcher.run(ari.events()))
                await asyncio.wait_for(dispatcher.connected.wait(), 10)

                def start() -> dict[str, Any]:
                    with TestClient(app) as c:
                        resp = c.post(
                            "/api/agents/me/practice",
                            headers=login(c, "tao", PW),
                            json={"scenario": SCENARIO},
                        )
                        assert resp.status_code == 202, resp.text
                        return dict(resp.json())

                asked = time.monotonic()
                answer = await asyncio.to_thread(start)
                seen["answer"] = answer
                leg = str(answer["channel_id"])
                deadline = time.monotonic() + 90
                while not tasks or not tasks[0].done():
                    assert time.monotonic() < deadline, "the practice call ended within 90 s"
                    seen["channels"] |= {str(c["name"]) for c in await ari.channels()}
                    if tasks and "answered_s" not in seen:
                        seen["answered_s"] = time.monotonic() - asked
                    if len(seen["played"]) > LINES_HEARD and "hung_up" not in seen:
                        seen["hung_up"] = True  # the trainee hangs up during the third line
                        with contextlib.suppress(Exception):
                            await ari.hangup(leg)
                    await asyncio.sleep(0.2)
                await tasks[0]
                await asyncio.sleep(1)  # baresip writes its recording when the call ends
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            return seen

        seen = asyncio.run(run())
    finally:
        tao.stop()

    vaccination = scenario(SCENARIO)
    cache = PromptCache.for_settings(lab)
    made = {str(cache.tts_path(step.say, vaccination.voice).with_suffix("")) for step in vaccination.steps}
    assert seen["played"] and all(uri.removeprefix("sound:") in made for uri in seen["played"]), (
        "every line played is the scenario's Chinese text, spoken by the service"
    )
    assert seen["channels"] and all(name.startswith(f"PJSIP/{tao_ep}-") for name in seen["channels"]), (
        f"only the trainee's own phone, never a number: {sorted(seen['channels'])}"
    )
    assert not any("lab-pstn" in name or name.startswith("Local/") for name in seen["channels"])

    with db.session() as s:
        row = s.get(PracticeCall, int(seen["answer"]["id"]))
        assert row is not None and row.state == "done" and row.recording_id is not None, row and row.result
        assert row.result is not None and row.result.endswith("ended by agent")
        rec = s.get(CallRecording, row.recording_id)
        assert rec is not None and rec.practice and rec.source == "practice" and rec.agent == "tao"
        with open_recording(lab, rec) as f:
            audio, rate = sf.read(f, dtype="int16")
    assert audio.ndim == 2 and rate == 8000
    trainee, caller = audio[:, 0], audio[:, 1]
    heard, _ = sf.read(tao.heard, dtype="int16")
    FIGURES["answered_s"] = float(seen["answered_s"])
    FIGURES["recording_s"] = audio.shape[0] / rate
    FIGURES["lines_played"] = float(len(seen["played"]))
    FIGURES["left_trainee_tone_share"] = band_energy(trainee, TRAINEE_HZ)
    FIGURES["right_caller_tone_share"] = band_energy(caller, TRAINEE_HZ)
    FIGURES["right_caller_dbfs"] = rms_dbfs(caller)
    FIGURES["trainee_heard_dbfs"] = rms_dbfs(np.asarray(heard))
    FIGURES["trainee_heard_tone_share"] = band_energy(np.asarray(heard), TRAINEE_HZ)
    FIGURES["wall_s"] = time.monotonic() - started
    print("\npractice lab figures:", {k: round(v, 4) for k, v in FIGURES.items()})
    assert FIGURES["lines_played"] >= LINES_HEARD
    assert FIGURES["left_trainee_tone_share"] > 0.3, "left: the trainee"
    assert FIGURES["right_caller_tone_share"] < 0.05, "right: the simulated caller, not the trainee"
    assert FIGURES["right_caller_dbfs"] > -45, "the caller spoke (text to speech)"
    assert FIGURES["trainee_heard_dbfs"] > -45, "the trainee's phone heard the caller"
    assert FIGURES["trainee_heard_tone_share"] < 0.05, "and not their own tone back"
