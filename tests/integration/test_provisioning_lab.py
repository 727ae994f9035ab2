"""Agents' PJSIP endpoints come from the database: added with the user, gone when disabled.

Against the real lab Asterisk, and registered to by Debian's baresip, an independent SIP client,
to show the server side is standard SIP (over TLS with SRTP, as home agents use it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ari import AriClient, AriError
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from tests.lab import lab_ports, private_lab
from tests.utils.baresip import Baresip, start_baresip
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


def test_endpoint_follows_the_account_and_baresip_registers(lab: Settings, tmp_path: Path) -> None:
    db = Database(lab.db_url)
    from warmline.migrate import upgrade

    upgrade(lab.db_url)
    change = asyncio.run(accounts.add_user(lab, db, "mei", Role.agent, PW, actor="test"))
    assert change.sync == {"lab": "reloaded"}
    endpoint = change.sip_endpoint
    assert endpoint is not None and endpoint != "mei", "the endpoint id is not the login name"
    assert asyncio.run(endpoint_state(lab, endpoint)) == "offline"

    with db.session() as s:
        from agents.models import SipAccount

        secret = s.query(SipAccount).one().secret
    st = lab_status(lab)
    phone = start_baresip(tmp_path / "baresip", Baresip(endpoint, secret, st.sip_tls_port, st.ca_file))
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(endpoint_state(lab, endpoint)) != "online" and time.monotonic() < deadline:
            time.sleep(0.3)
        assert asyncio.run(endpoint_state(lab, endpoint)) == "online", phone.said()[-2000:]
        assert asyncio.run(call_answered(lab, endpoint)), "baresip auto-answers a call originated through ARI"
    finally:
        phone.stop()

    asyncio.run(accounts.disable_user(lab, db, "mei", actor="test"))
    assert asyncio.run(endpoint_state(lab, endpoint)) is None
    db.dispose()
