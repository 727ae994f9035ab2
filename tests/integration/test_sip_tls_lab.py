"""SIP over TLS with SRTP for home agents, proved by a third party, and SIP hardening, measured.

A private lab (slot "sip" in tests/lab.py): TLS on the SIP port + 1 with the lab's own CA.
Debian's baresip registers over TLS (verifying the CA) with mandatory SRTP (SDES) and answers a call
whose audio it hears; a client without SRTP gets no call through. Then the hardening: the same
answers for known and unknown users, a throttle that blocks an address after a few wrong
passwords (read from Asterisk's security log), `warmline sip blocks` / `unblock`, and SIP secret
rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.models import SipAccount
from core.ari import AriClient, AriError
from core.auth.models import Role, User
from core.db import Database
from core.settings import Settings
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from warmline import accounts, migrate
from warmline.lab import lab_status

pytestmark = pytest.mark.integration

PORTS = lab_ports("sip")
PW = "correct horse battery"
TALKER = "13800138009"  # lab callee 9: answers and talks ~60 s
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("sip-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    migrate.upgrade(url)
    with private_lab(var, PORTS, database_url=url) as settings:
        assert settings.sips_port == PORTS.sip_tls
        yield settings


@pytest.fixture(scope="module")
def db(lab: Settings) -> Iterator[Database]:
    database = Database(lab.db_url)
    yield database
    database.dispose()


def add_agent(lab: Settings, db: Database, name: str) -> tuple[str, str]:
    """A new agent; returns (endpoint id, SIP secret)."""
    asyncio.run(accounts.add_user(lab, db, name, Role.agent, PW, actor="test"))
    with db.session() as s:
        row = s.execute(
            select(SipAccount.endpoint, SipAccount.secret).join(User).where(User.name == name)
        ).one()
    return str(row[0]), str(row[1])


async def _state(ari: AriClient, endpoint: str) -> str | None:
    with contextlib.suppress(AriError):
        return str((await ari.request("GET", f"/endpoints/PJSIP/{endpoint}"))["state"])
    return None


def wait_online(lab: Settings, endpoint: str, phone: BaresipPhone, timeout: float = 30) -> float:
    """Seconds until the endpoint is online (registered)."""

    async def run() -> float:
        started = time.monotonic()
        async with lab_client(lab) as ari:
            while time.monotonic() - started < timeout:
                if await _state(ari, endpoint) == "online":
                    return time.monotonic() - started
                await asyncio.sleep(0.05)
        raise AssertionError(f"{endpoint} did not register; baresip said:\n{phone.said()[-3000:]}")

    return asyncio.run(run())


def call_talker(lab: Settings, endpoint: str, talk_s: float = 4.0) -> dict[str, str]:
    """Originate to the agent joined to a lab callee that talks; returns the agent leg's security
    as Asterisk sees it (signalling over TLS, media encrypted), or {} when it never came up."""

    async def run() -> dict[str, str]:
        async with lab_client(lab) as ari:
            channel = f"tls-{endpoint}-{time.monotonic_ns()}"
            await ari.originate(
                f"PJSIP/{endpoint}", channel_id=channel, context="lab-pstn", extension=TALKER, timeout=20
            )
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        state = (await ari.get_channel(channel))["state"]
                    except AriError:
                        return {}  # refused (no SRTP) and gone
                    if state == "Up":
                        break
                    await asyncio.sleep(0.1)
                else:
                    return {}
                seen = {}
                for var in ("CHANNEL(pjsip,secure)", "CHANNEL(rtp,secure,audio)"):
                    got = await ari.request("GET", f"/channels/{channel}/variable", variable=var)
                    seen[var] = str(got["value"])
                await asyncio.sleep(talk_s)  # the conversation: audio flows meanwhile
                return seen
            finally:
                with contextlib.suppress(AriError):
                    await ari.hangup(channel)

    return asyncio.run(run())


def rms_dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean((x.astype(np.float64) / 32768.0) ** 2))) if x.size else 0.0
    return float(20 * np.log10(max(rms, 1e-9)))


def test_baresip_over_tls_with_srtp_registers_and_hears_the_call(
    lab: Settings, db: Database, tmp_path: Path
) -> None:
    endpoint, secret = add_agent(lab, db, "mei")
    st = lab_status(lab)
    phone = start_baresip(
        tmp_path / "mei", Baresip(endpoint, secret, st.sip_tls_port, st.ca_file), tone_hz=700
    )
    try:
        FIGURES["tls_register_s"] = wait_online(lab, endpoint, phone)
        security = call_talker(lab, endpoint)
        assert security, f"baresip answered; it said:\n{phone.said()[-3000:]}"
        assert security["CHANNEL(pjsip,secure)"] == "1", "signalling over TLS"
        assert security["CHANNEL(rtp,secure,audio)"] == "1", "media encrypted (SRTP)"
    finally:
        phone.stop()
    audio, rate = sf.read(phone.heard, dtype="int16")
    FIGURES["heard_dbfs"] = rms_dbfs(audio)
    FIGURES["heard_s"] = audio.shape[0] / rate
    assert FIGURES["heard_dbfs"] > -45, "baresip heard the lab callee speak through SRTP"


def test_zz_figures() -> None:
    print("\nsip figures:", json.dumps({k: round(v, 3) for k, v in FIGURES.items()}))
