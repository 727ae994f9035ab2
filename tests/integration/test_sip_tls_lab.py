"""SIP over TLS with SRTP for home agents, proved by a third party, and SIP hardening, measured.

A private lab (slot "sip" in tests/lab.py): TLS on the SIP port + 1 with the lab's own CA.
Debian's baresip registers over TLS with mandatory SRTP (SDES) and answers a call
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
from agents.sip_guard import SipGuard
from core.ari import AriClient, AriError
from core.auth.models import Role, User
from core.db import Database
from core.settings import Settings
from softphone.account import SipAccountSettings
from softphone.engine import Engine, EngineConfig
from softphone.events import RegistrationChanged
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from tests.utils.cli import cli_runner, run
from tests.utils.sip_probe import SipProbe
from warmline import accounts, migrate
from warmline.cli import app
from warmline.lab import lab_status
from warmline.lab.tls import ensure_lab_tls

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


def test_baresip_without_srtp_gets_no_call(lab: Settings, db: Database, tmp_path: Path) -> None:
    """The same client over TLS but offering plain RTP: registered, yet no call is ever set up."""
    endpoint, secret = add_agent(lab, db, "bai")
    st = lab_status(lab)
    sip = Baresip(endpoint, secret, st.sip_tls_port, st.ca_file, srtp=False)
    phone = start_baresip(tmp_path / "bai", sip)
    try:
        wait_online(lab, endpoint, phone)
        assert call_talker(lab, endpoint, talk_s=0) == {}, "SRTP is mandatory: a plain-RTP phone is refused"
    finally:
        phone.stop()


def test_softphone_refuses_a_server_its_ca_did_not_sign(lab: Settings, db: Database, tmp_path: Path) -> None:
    """pjsua2 verifies the server: with another CA's certificate as trust anchor it never registers."""
    endpoint, secret = add_agent(lab, db, "wu")
    other = ensure_lab_tls(tmp_path / "other-ca", "127.0.0.1")
    st = lab_status(lab)

    async def register(ca_pem: str) -> RegistrationChanged:
        sip = SipAccountSettings(
            endpoint, secret, f"sips:127.0.0.1:{st.sip_tls_port}", realm="warmline", transport="tls",
            srtp="mandatory", ca_pem=ca_pem,
        )  # fmt: skip
        async with Engine(EngineConfig()) as engine:
            events = engine.subscribe()
            await engine.register(sip)
            while True:
                event = await asyncio.wait_for(events.get(), 30)
                if isinstance(event, RegistrationChanged):
                    return event

    refused = asyncio.run(register(other.ca_cert.read_text()))
    assert not refused.registered and refused.code != 200, refused
    accepted = asyncio.run(register(st.ca_file.read_text()))
    assert accepted.registered and accepted.code == 200, accepted


def test_known_and_unknown_users_get_the_same_answers(lab: Settings, db: Database) -> None:
    """No enumeration: a real endpoint id with a wrong password, an unknown id and a login name are
    challenged and refused alike (status, reason, headers, challenge parameters, realm)."""
    endpoint, _secret = add_agent(lab, db, "zhou")
    st = lab_status(lab)
    shapes: dict[str, set[tuple[tuple[tuple[int, str, tuple[str, ...], tuple[str, ...]], ...], str]]] = {}
    times: dict[str, list[float]] = {}
    with SipProbe("127.0.0.1", st.sip_tls_port, st.ca_file, source="127.0.0.1") as probe:
        for _ in range(3):
            for label, user in (("known", endpoint), ("unknown", "ag0123456789ab"), ("login", "zhou")):
                started = time.monotonic()
                answers = probe.register(user, "not-the-password")
                times.setdefault(label, []).append(time.monotonic() - started)
                realm = answers[0].headers["www-authenticate"].split('realm="', 1)[1].split('"', 1)[0]
                shapes.setdefault(label, set()).add((tuple(a.shape() for a in answers), realm))
    assert shapes["known"] == shapes["unknown"] == shapes["login"], shapes
    (only,) = shapes["known"]
    assert [shape[0] for shape in only[0]] == [401, 401], "challenged, then refused"
    assert only[1] == "warmline"
    for label, took in times.items():
        FIGURES[f"answer_ms_{label}"] = 1000 * sorted(took)[len(took) // 2]


def _env(lab: Settings) -> dict[str, str]:
    return {
        "WARMLINE_ASTERISK_NODES": json.dumps([{"ari_url": f"http://127.0.0.1:{PORTS.ari}/ari"}]),
        "WARMLINE_SIP_PORT": str(PORTS.sip),
        "WARMLINE_DIALER_ENABLED": "false",
    }


def test_wrong_passwords_from_one_address_are_blocked_and_unblocked(
    lab: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker at 127.0.0.2 guesses an agent's password; the guard (reading Asterisk's security
    log) blocks the address after `sip_guard_max_failures` tries; the agent, elsewhere, still
    registers; `warmline sip blocks` lists it and `warmline sip unblock` lifts it."""
    endpoint, secret = add_agent(lab, db, "qin")
    st = lab_status(lab)
    guard = SipGuard(lab, db)  # counts from now on
    assert lab.sip_guard_max_failures == 5

    async def attack(tries: int) -> tuple[int | None, list[int]]:
        """Wrong passwords until a block; returns (the try that was blocked, final statuses)."""
        finals = []
        seen: list[str] = []
        blocked_after = None
        for n in range(1, tries + 1):
            try:
                with SipProbe("127.0.0.1", st.sip_tls_port, st.ca_file, source="127.0.0.2") as probe:
                    finals.append(probe.register(endpoint, f"guess-{n}")[-1].status)
            except (ConnectionError, OSError):
                finals.append(0)
            if blocked_after is None:
                await until_logged(guard, n, seen)
            if blocked_after is None and "127.0.0.2" in guard.blocked:
                blocked_after = n
        return blocked_after, finals

    started = time.monotonic()
    blocked_after, finals = asyncio.run(attack(8))
    FIGURES["tries_before_block"] = float(blocked_after or 0)
    FIGURES["attack_to_block_s"] = time.monotonic() - started
    assert blocked_after == 5, (blocked_after, finals)
    assert finals[:5] == [401] * 5, finals
    assert all(code == 403 for code in finals[5:]), f"blocked: refused before any digest is checked {finals}"
    assert "127.0.0.2" in st.security_log.read_text(), "Asterisk's security log names the address"

    # The agent at another address is not affected.
    with SipProbe("127.0.0.1", st.sip_tls_port, st.ca_file, source="127.0.0.1") as probe:
        assert probe.register(endpoint, secret)[-1].status == 200

    with cli_runner(monkeypatch, lab.var_dir, lab.db_url, **_env(lab)) as runner:
        listed = json.loads(run(runner, "sip", "blocks", "--json"))
        assert [(b["address"], b["failures"]) for b in listed] == [("127.0.0.2", 5)]
        assert listed[0]["until"] is not None, "a guard block expires by itself"
        assert "127.0.0.2" in run(runner, "sip", "blocks")
        assert "不是 IP 地址" in runner.invoke(app, ["sip", "unblock", "nonsense"]).stderr
        run(runner, "sip", "unblock", "127.0.0.2")
        assert json.loads(run(runner, "sip", "blocks", "--json")) == []
    with SipProbe("127.0.0.1", st.sip_tls_port, st.ca_file, source="127.0.0.2") as probe:
        assert probe.register(endpoint, "guess-again")[-1].status == 401, "unblocked: challenged again"


async def until_logged(guard: SipGuard, failures: int, seen: list[str]) -> None:
    """Feed the guard what Asterisk logs, until `failures` failed digests have been read (the
    lines of one refused try are written as it is refused, not all at once)."""
    for _ in range(250):
        lines = [line for f in guard.followers for line in f.read()]
        seen.extend(lines)
        if lines:
            await guard.feed(lines)
        if sum("ChallengeResponseFailed" in line for line in seen) >= failures:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"Asterisk did not log {failures} failures: {seen[-5:]}")


def test_rotate_sip_secret(lab: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, old = add_agent(lab, db, "han")
    st = lab_status(lab)
    with cli_runner(monkeypatch, lab.var_dir, lab.db_url, **_env(lab)) as runner:
        said = json.loads(run(runner, "agents", "rotate-sip", "han", "--json"))
        assert said["endpoint"] == endpoint and said["sync"] == {"lab": "reloaded"}
        assert "new" not in said and old not in json.dumps(said), "the secret is never printed"
        assert "没有名为“nobody”的用户" in runner.invoke(app, ["agents", "rotate-sip", "nobody"]).stderr
    with db.session() as s:
        new = s.scalar(select(SipAccount.secret).where(SipAccount.endpoint == endpoint))
    assert new and new != old
    with SipProbe("127.0.0.1", st.sip_tls_port, st.ca_file) as probe:
        assert probe.register(endpoint, old)[-1].status == 401, "the old secret no longer works"
        assert probe.register(endpoint, new)[-1].status == 200


def test_zz_figures() -> None:
    print("\nsip figures:", json.dumps({k: round(v, 3) for k, v in FIGURES.items()}))
