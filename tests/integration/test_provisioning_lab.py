"""Agents' PJSIP endpoints come from the database: added with the user, gone when disabled.

Against the real lab Asterisk, and registered to by Debian's baresip, an independent SIP client,
to show the server side is standard SIP.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ari import AriClient, AriError
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from tests.lab import lab_ports, private_lab
from warmline import accounts
from warmline.lab import lab_status

pytestmark = pytest.mark.integration
PW = "correct horse battery"


@pytest.fixture
def lab(tmp_path: Path, db_url: str) -> Iterator[Settings]:
    with private_lab(tmp_path / "var", lab_ports("provisioning"), database_url=db_url) as settings:
        yield settings


async def endpoint_state(settings: Settings, name: str) -> str | None:
    """The endpoint's registration state, or None when PJSIP has no such endpoint configured.

    Configuration is read through sorcery (ARI's dynamic config view), because ARI's /endpoints
    list keeps a snapshot of an endpoint after its configuration is gone.
    """
    st = lab_status(settings)
    async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
        try:
            await ari.request("GET", f"/asterisk/config/dynamic/res_pjsip/endpoint/{name}")
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        info = await ari.request("GET", f"/endpoints/PJSIP/{name}")
    return str(info["state"])


async def call_answered(settings: Settings, endpoint: str) -> bool:
    """Originate to the agent, joined to a lab callee that talks; True once the agent's leg is Up."""
    st = lab_status(settings)
    async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
        channel_id = f"prov-{endpoint}-{time.monotonic_ns()}"
        await ari.originate(
            f"PJSIP/{endpoint}",
            channel_id=channel_id,
            context="lab-pstn",
            extension="13800138009",
            timeout=30,
        )
        try:
            for _ in range(300):  # up to 30 s: ringing and auto-answer are slow on a busy machine
                channel = await ari.get_channel(channel_id)
                if channel["state"] == "Up":
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            await ari.hangup(channel_id)


def baresip_register(tmp: Path, settings: Settings, user: str, password: str) -> subprocess.Popen[bytes]:
    conf = tmp / "baresip"
    conf.mkdir()
    tone = conf / "tone.wav"  # baresip's sine source needs 48 kHz; a file at 8 kHz suits G.711
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone), "synth", "30", "sine", "440"],
        check=True,
    )
    (conf / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{settings.sip_port};transport=udp>;auth_pass={password};"
        "answermode=auto;regint=60\n"
    )
    (conf / "config").write_text(
        "module_path\t/usr/lib/baresip/modules\nsip_listen\t127.0.0.1:0\n"
        f"audio_player\taufile,{conf / 'heard.wav'}\naudio_source\taufile,{tone}\n"
        "module\tg711.so\nmodule\taufile.so\nmodule_app\taccount.so\nmodule_app\tmenu.so\n"
    )
    return subprocess.Popen(
        ["baresip", "-f", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def test_endpoint_follows_the_account_and_baresip_registers(lab: Settings, tmp_path: Path) -> None:
    db = Database(lab.db_url)
    from warmline.migrate import upgrade

    upgrade(lab.db_url)
    change = asyncio.run(accounts.add_user(lab, db, "mei", Role.agent, PW, actor="test"))
    assert change.sync == {"lab": "reloaded"}
    assert asyncio.run(endpoint_state(lab, "mei")) == "offline"

    with db.session() as s:
        from agents.models import SipAccount

        secret = s.query(SipAccount).one().secret
    if shutil.which("baresip") is None:
        pytest.fail("baresip is not installed (make test installs it)")
    phone = baresip_register(tmp_path, lab, "mei", secret)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(endpoint_state(lab, "mei")) != "online" and time.monotonic() < deadline:
            time.sleep(0.3)
        assert asyncio.run(endpoint_state(lab, "mei")) == "online"
        assert asyncio.run(call_answered(lab, "mei")), "baresip auto-answers a call originated through ARI"
    finally:
        phone.terminate()
        phone.wait(5)

    asyncio.run(accounts.disable_user(lab, db, "mei", actor="test"))
    assert asyncio.run(endpoint_state(lab, "mei")) is None
    db.dispose()
