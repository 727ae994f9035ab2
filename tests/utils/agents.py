"""Agents for tests that route calls: accounts with skills, states in the ledger, and what the
``warmline-record`` dialplan does on the fake Asterisk when an agent answers."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import soundfile as sf
from sqlalchemy import select

from agents.models import AgentProfile, SipAccount
from agents.routing import set_state
from agents.service import ensure_sip_account
from core.ari_events import EventDispatcher
from core.auth.models import Role, User
from core.auth.service import create_user
from core.db import Database, utcnow
from core.settings import Settings
from tests.fakes.ami import FakeMixMonitor
from tests.fakes.ari import Callee, FakeAri, FakeAsterisk, FakeChannel, FakeRecording

AGENT_PASSWORD = "correct horse battery"


def make_agents(db: Database, skills: Mapping[str, Sequence[str]]) -> None:
    """Agent accounts (with their SIP endpoints) and the skills routing reads."""
    with db.session() as s:
        for name, their_skills in skills.items():
            user = create_user(s, name, Role.agent, AGENT_PASSWORD, actor="test")
            ensure_sip_account(s, user, actor="test")
            s.add(AgentProfile(user_id=user.id, skills=list(their_skills), daily_target_minutes=240))


def available(db: Database, *names: str, idle_minutes: Mapping[str, int] | None = None) -> None:
    with db.session() as s:
        for name in names:
            ago = (idle_minutes or {}).get(name, 0)
            set_state(s, name, "available", "test", since=utcnow() - timedelta(minutes=ago))


def endpoint_of(db: Database, agent: str) -> str:
    """The agent's dial string, ``PJSIP/<endpoint>``."""
    with db.session() as s:
        found = s.scalar(
            select(SipAccount.endpoint).join(User, User.id == SipAccount.user_id).where(User.name == agent)
        )
    assert found is not None, f"{agent} has a SIP account"
    return f"PJSIP/{found}"


def record_and_enter_stasis(settings: Settings, asterisk: FakeAsterisk) -> Callable[[FakeChannel], None]:
    """What ``warmline-record`` does once the agent answers: MixMonitor writes the two sides
    (here 1 s of tone each: 700 Hz the agent, 300 Hz the caller), then Stasis(warmline,agent-leg)."""

    def run(channel: FakeChannel) -> None:
        base = settings.recordings_dir.resolve() / channel.variables["WARMLINE_REC_FILE"]
        base.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(8000) / 8000
        for side, hz in (("agent", 700), ("customer", 300)):
            tone = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
            sf.write(f"{base}-{side}.wav", tone, 8000, subtype="PCM_16")
        asterisk.enter_stasis(channel.id, ["agent-leg"])

    return run


def write_ari_recordings(settings: Settings) -> Callable[[FakeRecording], None]:
    """What Asterisk writes for an ARI recording (``FakeAsterisk.on_record``) into the recordings
    folder (ARI's spool/recording): 1 s of tone, 700 Hz a ``…-agent`` side, 300 Hz any other."""

    def write(recording: FakeRecording) -> None:
        path = settings.recordings_dir.resolve() / f"{recording.name}.{recording.format}"
        path.parent.mkdir(parents=True, exist_ok=True)
        hz = 700 if recording.name.endswith("-agent") else 300
        level = 0.3 + (zlib.crc32(recording.name.encode()) % 1000) / 1e5  # each call's audio its own
        t = np.arange(8000) / 8000
        sf.write(path, (level * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16), 8000, subtype="PCM_16")

    return write


def write_mixmonitor_files(settings: Settings) -> Callable[[FakeMixMonitor], None]:
    """What MixMonitor writes for its ``r()``/``t()`` files (``FakeAmi.on_mixmonitor``) into the
    recordings folder (the monitor folder): 1 s each, 700 Hz a ``…-agent`` file, 300 Hz any other."""

    def write(monitor: FakeMixMonitor) -> None:
        for name in (monitor.read_file, monitor.write_file):
            if not name:
                continue
            path = settings.recordings_dir.resolve() / name
            path.parent.mkdir(parents=True, exist_ok=True)
            hz = 700 if path.stem.endswith("-agent") else 300
            t = np.arange(8000) / 8000
            sf.write(
                path, (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16), 8000, subtype="PCM_16"
            )

    return write


@dataclass
class FakeNode:
    """One fake Asterisk node as a process sees it: the server, a client, the event router pumping
    that client's events, and ``warmline-record`` recording agent calls."""

    asterisk: FakeAsterisk
    ari: FakeAri
    dispatcher: EventDispatcher


@asynccontextmanager
async def fake_node(
    settings: Settings, db: Database, callees: Mapping[str, Callee]
) -> AsyncIterator[FakeNode]:
    """Agents in `callees` (by name) answer as their script says."""
    asterisk = FakeAsterisk()
    ari = asterisk.client()
    dispatcher = EventDispatcher()
    pump = asyncio.create_task(dispatcher.run(ari.events()))
    await dispatcher.connected.wait()
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    for agent, script in callees.items():
        asterisk.callee(endpoint_of(db, agent), script)
    try:
        yield FakeNode(asterisk, ari, dispatcher)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
