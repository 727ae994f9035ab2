"""An attended transfer to a second agent, through the service as `warmline up` runs it (the app with
its dialer worker in one process, LiveServer), the lab's Asterisk, two real pjsua2 softphones and a
lab callee:

mei (this process's softphone, saying a 700 Hz tone) places a call to lab callee 9 (who talks in
Mandarin for a minute), talks, consults lin and goes back (Escape: the callee hears mei again),
then consults lin (`warmline softphone --headless --auto-answer`, saying an 1100 Hz tone) from her
softphone's transfer chooser; they hear each other while the callee waits on hold; mei joins them
(complete) and leaves. Then the callee and lin hear each other: what Asterisk sends to the callee
(a snoop of their channel, recorded) carries lin's tone, and lin's stereo recording carries the
callee's voice. The transfer is stored (mei → lin, attended,
completed), the call and its wrap-up are lin's, both agents' parts are recorded on the attempt.

Every branch of the transfer logic is in tests/unit/test_transfer_fake_ari.py; this proves the
parts meet, audio and all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from agents.profiles import update_profile
from agents.routing import set_state
from agents.states import current_state
from agents.transfer.models import Transfer
from core.ari import AriClient, AriError
from core.auth.models import Role
from core.db import Database, utcnow
from core.i18n import use_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact
from recordings import service as recordings_service
from recordings.models import CallRecording
from softphone.engine import Engine, EngineConfig
from softphone.events import EngineEvent, IncomingCall, RegistrationChanged
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from tests.integration.test_softphone_lab import next_event
from tests.lab import lab_ports, private_lab
from tests.utils import signed_in, until
from tests.utils.lab_audio import channel_hears, dbfs, tone_file, tone_share
from tests.utils.live_server import LiveServer
from warmline import accounts, migrate
from warmline.lab import lab_status

pytestmark = pytest.mark.integration

PORTS = lab_ports("transfer")
PASSWORD = "lab-agent-password-1"
TALKER = "+8613800138009"  # lab callee 9: answers after ~1 s and talks for a minute
MEI_HZ, LIN_HZ = 700, 1100  # what each agent's phone says into its calls
REPO = Path(__file__).resolve().parents[2]
FIGURES: dict[str, float] = {}


@dataclass
class World:
    settings: Settings
    db: Database
    url: str
    contact_id: int
    lin_heard: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("transfer-lab")
    prefix = f"warmline-transfer-{uuid.uuid4().hex[:8]}"
    with private_lab(tmp / "var", PORTS, dialer_enabled=True, topic_prefix=prefix) as settings:
        migrate.upgrade(settings.db_url)
        db = Database(settings.db_url)
        try:
            for name in ("mei", "lin"):
                asyncio.run(accounts.add_user(settings, db, name, Role.agent, PASSWORD, actor="test"))
            with db.session() as s:
                spec = svc.build_spec(
                    {"name": "w48", "mode": "preview", "windows": {"daily": ["00:00-24:00"]}}
                )
                campaign = svc.create_campaign(s, spec, actor="test")
                campaign.status = CampaignStatus.running
                contact = Contact(
                    campaign_id=campaign.id, phone_e164=TALKER, name="王奶奶", fields={"社区": "朝阳"}
                )
                s.add(contact)
                s.flush()
                contact_id = contact.id
                # the next test's callee (lab callee 9 too: the last digit says how it behaves)
                s.add(
                    Contact(campaign_id=campaign.id, phone_e164=TALKER[:-2] + "19", name="李爷爷", fields={})
                )
            with LiveServer(settings, db) as server, second_softphone(server.url, tmp) as lin_heard:
                yield World(settings, db, server.url, contact_id, lin_heard)
        finally:
            db.dispose()


class second_softphone:
    """lin: `warmline softphone --headless --auto-answer`, saying a tone and recording what she hears."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.record = tmp / "lin-heard"
        self.cmd = [
            *(sys.executable, "-m", "warmline.cli", "softphone", "--headless", "--server", url),
            *("--user", "lin", "--password-stdin", "--auto-answer", "--record", str(self.record)),
            *("--play", str(tone_file(tmp / "lin-tone.wav", LIN_HZ))),
        ]

    def __enter__(self) -> Path:
        log_path = self.record.parent / "lin.log"
        self.log = log_path.open("w")  # a file, not a pipe nobody reads (a full pipe blocks pjsua)
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(PASSWORD + "\n")
        self.proc.stdin.close()
        # Wait for "registered" (or for the process to end), with a limit only against a hang.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("{") and json.loads(line).get("registered"):
                # from now on its stdout goes on being read, so it never blocks on a full pipe
                threading.Thread(target=self._drain, daemon=True).start()
                return self.record
        self.proc.kill()
        raise AssertionError(f"lin's softphone did not register: {log_path.read_text()[-2000:]}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.write(line)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def the_attempt(db: Database) -> Attempt | None:
    with db.session() as s:
        return s.scalar(select(Attempt))


def the_transfer(db: Database) -> Transfer | None:
    """The latest transfer."""
    with db.session() as s:
        return s.scalar(select(Transfer).order_by(Transfer.requested_at.desc()).limit(1))


def transfers(db: Database) -> list[Transfer]:
    with db.session() as s:
        return list(s.scalars(select(Transfer).order_by(Transfer.requested_at)))


def explain(w: World) -> str:
    """What the transfers and lin's state were, and what lin's phone said last (for a failure)."""
    rows = [(t.state, t.result, t.rung_agent, t.to_agent) for t in transfers(w.db)]
    with w.db.session() as s:
        lin = current_state(s, "lin")
        lin_state = (lin.state, lin.reason) if lin is not None else None
    log = w.lin_heard.parent / "lin.log"
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    return f"transfers {rows}; lin {lin_state}; lin's phone: {tail}"


async def waiting(w: World, what: str, condition: Callable[[], bool], timeout: float = 30) -> None:  # noqa: ASYNC109
    try:
        await until(condition, timeout, interval=0.2, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {explain(w)}") from None


def state_of(db: Database, agent: str) -> str | None:
    with db.session() as s:
        found = current_state(s, agent)
        return found.state if found is not None else None


def read_recording(settings: Settings, rec: CallRecording) -> tuple[np.ndarray, int]:
    """A stored recording's samples, decrypted as the API plays it (recordings are encrypted at rest)."""
    with recordings_service.open_recording(settings, rec) as f:
        data, rate = sf.read(f, dtype="int16")
    return data, rate


async def scenario(w: World, tmp: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    server, sip = await signed_in(w.url, "mei", PASSWORD)
    config = EngineConfig(record_dir=tmp / "mei-heard", play_file=tone_file(tmp / "mei-tone.wav", MEI_HZ))
    async with Engine(config) as engine:
        phone = Softphone(
            engine, AgentStatus("mei", NullPublisher()), server=server, on_wrapup=server.post_wrapup
        )
        queue: asyncio.Queue[EngineEvent | None] = engine.subscribe()
        await phone.start(sip)
        await next_event(queue, RegistrationChanged, registered=True)
        with w.db.session() as s:
            set_state(s, "lin", "available", "ready", since=utcnow())  # lin pressed Alt+R

        # mei calls the callee (her phone rings first) and talks
        await phone.act("preview")
        await phone.act("preview_call")
        ring = await next_event(queue, IncomingCall, timeout=30)
        call_ref = ring.headers["attempt"]
        await until(lambda: (a := the_attempt(w.db)) is not None and a.state is AttemptState.answered, 60,
                    interval=0.2, what="the callee answered")  # fmt: skip
        await until(lambda: any(c.status == "connected" for c in phone.calls.values()), 30, what="connected")
        await asyncio.sleep(3)  # mei and the callee talk

        # consult lin, then go back to the callee (Escape): the callee hears mei again
        await phone.act("consult", target="lin")
        await waiting(w, "lin answered the first consultation",
                      lambda: (t := the_transfer(w.db)) is not None and t.state == "consulting")  # fmt: skip
        await asyncio.sleep(2)
        await phone.act("cancel")
        await waiting(w, "back with the callee",
                      lambda: (t := the_transfer(w.db)) is not None and t.state == "cancelled")  # fmt: skip
        await asyncio.sleep(1)
        seen["ear_back"] = await channel_hears(w.settings, call_ref, seconds=2.0)
        await waiting(w, "lin free again", lambda: state_of(w.db, "lin") == "available")

        # consult lin from the chooser: colleague, lin, attended
        started = time.monotonic()
        await phone.act("transfer_open")
        await phone.act("transfer_choose", kind="agent", target="lin", mode="attended")
        await waiting(w, "lin answered the consultation",
                      lambda: (t := the_transfer(w.db)) is not None and t.state == "consulting")  # fmt: skip
        FIGURES["ask_to_consulting_s"] = time.monotonic() - started
        await until(lambda: (x := phone.transfers.current) is not None and x.state == "consulting", 10,
                    what="mei's phone knows")  # fmt: skip
        consult_at = time.monotonic()
        await asyncio.sleep(4)  # mei and lin talk; the callee waits on hold

        # join: the callee goes to lin, mei leaves
        await phone.act("transfer_complete")
        await waiting(w, "the transfer completed",
                      lambda: (t := the_transfer(w.db)) is not None and t.state == "completed")  # fmt: skip
        FIGURES["consult_s"] = time.monotonic() - consult_at
        await until(lambda: not phone.calls, 20, what="mei's leg ended")
        seen["mei_wrapup"] = phone.wrapup
        seen["said"] = [a.text for a in phone.announcements]
        await asyncio.sleep(1)
        seen["ear"] = await channel_hears(w.settings, call_ref)
        st = lab_status(w.settings)
        async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
            with contextlib.suppress(AriError):
                await ari.hangup(call_ref)  # the callee says goodbye
        await until(lambda: (a := the_attempt(w.db)) is not None and a.ended_at is not None, 60,
                    interval=0.2, what="the dialer closed the call")  # fmt: skip
        await phone.close()
    await server.aclose()
    seen["mei_heard"] = sorted((tmp / "mei-heard").glob("*.wav"))
    return seen


def test_attended_transfer_to_a_second_agent_both_sides_hear(world: World, tmp_path: Path) -> None:
    with use_locale("en"):
        seen = asyncio.run(scenario(world, tmp_path))
    first, row = transfers(world.db)
    assert (first.state, first.result, first.rung_agent, first.to_agent) == (
        "cancelled",
        "cancelled",
        "lin",
        None,
    )
    back, rate = sf.read(seen["ear_back"], dtype="int16")
    FIGURES["callee_hears_mei_again_share"] = tone_share(back, MEI_HZ, rate)
    assert FIGURES["callee_hears_mei_again_share"] > 0.3, "after going back, the callee hears mei"
    assert (row.from_agent, row.to_agent, row.kind, row.mode, row.state, row.result) == (
        "mei", "lin", "agent", "attended", "completed", "answered",
    )  # fmt: skip
    assert row.answered_at is not None and row.ended_at is not None
    attempt = the_attempt(world.db)
    assert attempt is not None and attempt.agent == "lin", "the call and its wrap-up are lin's"
    assert seen["mei_wrapup"] is None, "mei's phone opens no wrap-up: the call is lin's"
    assert any("lin" in text for text in seen["said"])

    # the callee hears lin (what Asterisk sends them after the join)
    ear, rate = sf.read(seen["ear"], dtype="int16")
    FIGURES["callee_hears_lin_share"] = tone_share(ear, LIN_HZ, rate)
    FIGURES["callee_hears_dbfs"] = dbfs(ear)
    assert FIGURES["callee_hears_lin_share"] > 0.3, "the callee hears lin's voice"

    with world.db.session() as s:
        # by agent, the latest last: lin's first part was the consultation mei went back from
        recordings = {r.agent: r for r in s.scalars(select(CallRecording).order_by(CallRecording.started_at))}
        lin_parts = s.scalar(
            select(func.count()).select_from(CallRecording).where(CallRecording.agent == "lin")
        )
    assert set(recordings) == {"mei", "lin"} and lin_parts == 2, "every agent's part is recorded"
    assert {r.attempt_id for r in recordings.values()} == {row.call_ref}
    lin_audio, rate = read_recording(world.settings, recordings["lin"])
    lin_said, lin_heard = lin_audio[:, 0], lin_audio[:, 1]
    FIGURES["lin_says_share"] = tone_share(lin_said, LIN_HZ, rate)
    FIGURES["lin_heard_mei_share"] = tone_share(lin_heard, MEI_HZ, rate)
    FIGURES["lin_heard_dbfs"] = dbfs(lin_heard)
    assert FIGURES["lin_says_share"] > 0.5, "lin's tone is on the left of her recording"
    assert FIGURES["lin_heard_mei_share"] > 0.05, "lin heard mei while they consulted"
    mei_audio, rate = read_recording(world.settings, recordings["mei"])
    FIGURES["mei_heard_lin_share"] = tone_share(mei_audio[:, 1], LIN_HZ, rate)
    assert FIGURES["mei_heard_lin_share"] > 0.05, "mei heard lin while they consulted"
    # after the join lin hears the callee's voice: her recording's right side beyond mei's tone
    tail = lin_heard[-rate * 2 :]
    FIGURES["lin_hears_callee_dbfs"] = dbfs(tail)
    assert tone_share(tail, MEI_HZ, rate) < 0.2 and FIGURES["lin_hears_callee_dbfs"] > -45, (
        "lin hears the callee, no longer mei"
    )


def latest_attempt(db: Database) -> Attempt | None:
    with db.session() as s:
        return s.scalar(select(Attempt).order_by(Attempt.created_at.desc()).limit(1))


async def blind_to_queue(w: World, tmp: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with w.db.session() as s:
        update_profile(s, "lin", actor="test", skills=["welfare"])
    await waiting(w, "lin free after the last call", lambda: state_of(w.db, "lin") == "available")
    server, sip = await signed_in(w.url, "mei", PASSWORD)
    config = EngineConfig(play_file=tone_file(tmp / "mei-tone.wav", MEI_HZ))
    async with Engine(config) as engine:
        phone = Softphone(
            engine, AgentStatus("mei", NullPublisher()), server=server, on_wrapup=server.post_wrapup
        )
        queue: asyncio.Queue[EngineEvent | None] = engine.subscribe()
        await phone.start(sip)
        await next_event(queue, RegistrationChanged, registered=True)
        await phone.act("preview")
        await phone.act("preview_call")
        ring = await next_event(queue, IncomingCall, timeout=30)
        call_ref = ring.headers["attempt"]
        await waiting(w, "the callee answered",
                      lambda: (a := latest_attempt(w.db)) is not None and a.state is AttemptState.answered)  # fmt: skip
        await until(lambda: any(c.status == "connected" for c in phone.calls.values()), 30, what="connected")
        await asyncio.sleep(2)  # mei and the callee talk

        # Alt+T, 2 (queue), welfare, Enter: the caller waits in queue welfare, mei is free at once
        started = time.monotonic()
        await phone.act("transfer_open", mode="blind")
        await phone.act("transfer_choose", kind="queue", target="welfare", mode="blind")
        await until(lambda: not phone.calls, 20, what="mei's leg ended")
        await waiting(w, "lin took the caller from the queue",
                      lambda: (t := the_transfer(w.db)) is not None and t.state == "completed", 60)  # fmt: skip
        FIGURES["blind_to_queue_answered_s"] = time.monotonic() - started
        seen["mei_wrapup"] = phone.wrapup
        await asyncio.sleep(1)
        seen["ear"] = await channel_hears(w.settings, call_ref)
        st = lab_status(w.settings)
        async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
            with contextlib.suppress(AriError):
                await ari.hangup(call_ref)
        await waiting(w, "the dialer closed the call",
                      lambda: (a := latest_attempt(w.db)) is not None and a.ended_at is not None, 60)  # fmt: skip
        await phone.close()
    await server.aclose()
    return seen


def test_blind_transfer_to_a_skill_queue_lin_takes_the_caller(world: World, tmp_path: Path) -> None:
    with use_locale("en"):
        seen = asyncio.run(blind_to_queue(world, tmp_path))
    row = the_transfer(world.db)
    assert row is not None
    assert (row.kind, row.mode, row.target, row.state, row.to_agent) == (
        "queue",
        "blind",
        "welfare",
        "completed",
        "lin",
    )
    attempt = latest_attempt(world.db)
    assert attempt is not None and attempt.agent == "lin", "the call and its wrap-up are lin's"
    assert seen["mei_wrapup"] is None, "mei's part ended with the hand-over"
    ear, rate = sf.read(seen["ear"], dtype="int16")
    FIGURES["callee_hears_lin_after_queue_share"] = tone_share(ear, LIN_HZ, rate)
    assert FIGURES["callee_hears_lin_after_queue_share"] > 0.3, "the callee hears lin"


def test_zz_report_figures() -> None:
    print("transfer lab figures:", {k: round(v, 3) for k, v in FIGURES.items()})
