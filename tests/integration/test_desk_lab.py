"""The desk for real: a lab call answered by a global key pressed while another window has the focus.

Xvfb is the desktop; `xmessage` stands for the agent's case system and has the keyboard focus;
`warmline softphone` runs as the agent runs it (a subprocess: real sign-in to a live warmline server,
provisioned SIP account, real pjsua2 registered with a private lab Asterisk on its own
ports, slot "desk" in tests/lab.py) with its global keys on and speech going to speech-dispatcher's socket, where a
stand-in (tests/fakes/ssip.py) records what it was asked to say. The lab calls the agent; the
test hears the ring spoken in Chinese, presses Ctrl+Shift+F2 with xdotool (XTEST, as a keyboard
does) into the other window, and sees Asterisk's channel answered and the connection spoken; then
Ctrl+Shift+F4 hangs up. The focus never leaves the other window.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.auth.models import Role
from core.db import Database
from core.i18n import translate
from core.settings import Settings
from tests.fakes.ssip import SsipRecorder
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils.live_server import LiveServer
from warmline import accounts, migrate

pytestmark = pytest.mark.integration

PORTS = lab_ports("desk")
AGENT = "mei"
ENDPOINTS: dict[str, str] = {}
PASSWORD = "lab-agent-password-1"
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 40


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    var = tmp_path_factory.mktemp("desk-lab") / "var"
    with private_lab(var, PORTS) as settings:
        migrate.upgrade(settings.db_url)
        db = Database(settings.db_url)
        try:
            change = asyncio.run(accounts.add_user(settings, db, AGENT, Role.agent, PASSWORD, actor="test"))
            assert change.sip_endpoint is not None
            ENDPOINTS[AGENT] = change.sip_endpoint  # random, not the login name
            with LiveServer(settings, db) as server:
                yield settings, server.url
        finally:
            db.dispose()


@pytest.fixture
def desktop() -> Iterator[str]:
    """An X server of our own (Xvfb picks a free display and tells it on a pipe)."""
    for tool in ("Xvfb", "xdotool", "xmessage"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not installed: run `make test` (scripts/install-system.sh test installs it)"
            )
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    assert number, "Xvfb did not start"
    try:
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def x(display: str, *args: str) -> str:
    done = subprocess.run(
        args, env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=20, check=True
    )
    return done.stdout.strip()


class AgentPhone:
    """`warmline softphone` as a subprocess; its stdout announcements ({"say", "cue"}) in a queue."""

    def __init__(self, url: str, display: str, speechd: str, data: Path) -> None:
        # Its log goes to a file: a pipe nobody reads fills up and blocks the phone mid-call.
        self.log_path = data / "softphone.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "warmline.cli", "softphone", "--headless", "--server", url),
                *("--user", AGENT, "--password-stdin", "--hotkeys", "--speech", "speechd", "-v"),
                *("--config", str(data / "softphone.toml")),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO,
            env={**os.environ, "DISPLAY": display, "SPEECHD_ADDRESS": speechd, "XDG_CONFIG_HOME": str(data)},
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(PASSWORD + "\n")
        self.proc.stdin.close()
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.said: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def wait(self, test: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                item = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.said.append(item)
            if test(item):
                return item
        raise AssertionError(f"{what}: not seen; the phone printed {self.said}; stderr: {self.stderr()}")

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


async def _ring_agent(settings: Settings, channel_id: str) -> None:
    async with lab_client(settings) as ari:
        await ari.originate(
            f"PJSIP/{ENDPOINTS[AGENT]}",
            channel_id=channel_id,
            context="lab-pstn",
            extension="13800138009",  # a lab callee that keeps talking once the agent answers
            timeout=30,
            variables={"PJSIP_HEADER(add,X-Warmline-Phone)": "13800138000"},
        )


async def _channel_state(settings: Settings, channel_id: str) -> str | None:
    async with lab_client(settings) as ari:
        try:
            return str((await ari.get_channel(channel_id))["state"])
        except Exception:
            return None  # gone


def _wait_channel(settings: Settings, channel_id: str, want: str | None) -> None:
    deadline = time.monotonic() + WAIT_S
    while (state := asyncio.run(_channel_state(settings, channel_id))) != want:
        assert time.monotonic() < deadline, f"channel {channel_id} is {state}, not {want}"
        time.sleep(0.1)


def test_a_global_key_in_another_window_answers_a_lab_call_and_it_is_spoken_in_chinese(
    lab: tuple[Settings, str], desktop: str, tmp_path: Path
) -> None:
    settings, url = lab
    other = subprocess.Popen(
        ["xmessage", "-name", "case-system", "12345 工单系统"], env={**os.environ, "DISPLAY": desktop}
    )
    with SsipRecorder(tmp_path / "speechd.sock") as speech:
        phone = AgentPhone(url, desktop, speech.address, tmp_path)
        try:
            window = x(desktop, "xdotool", "search", "--sync", "--classname", "case-system")
            x(desktop, "xdotool", "windowfocus", "--sync", window)
            phone.wait(lambda m: m.get("registered"), "registration with the lab")
            keys_said = speech.wait_for("Ctrl+Shift+F2", WAIT_S)
            assert keys_said.text.startswith("在任何窗口都可用的热键：") and keys_said.language == "zh"

            channel = "desk-call-1"
            asyncio.run(_ring_agent(settings, channel))
            ring = phone.wait(lambda m: m.get("cue") == "ring", "the ring announced")
            spoken_ring = speech.wait_for(ring["say"], WAIT_S)
            answer_hint = translate("zh_CN", "Or press {key} in any window.", key="Ctrl+Shift+F2")
            assert "138****8000" in spoken_ring.text and spoken_ring.text.endswith(answer_hint)
            assert answer_hint == "也可在任何窗口按 Ctrl+Shift+F2。" and spoken_ring.language == "zh"
            assert x(desktop, "xdotool", "getwindowfocus") == window, "a ring does not take the focus"

            x(desktop, "xdotool", "key", "--clearmodifiers", "ctrl+shift+F2")
            _wait_channel(settings, channel, "Up")  # Asterisk: the agent answered
            connected = phone.wait(lambda m: m.get("cue") == "connected", "the answer announced")
            speech.wait_for(connected["say"], WAIT_S)
            assert x(desktop, "xdotool", "getwindowfocus") == window, (
                "the key was pressed in the other window"
            )

            x(desktop, "xdotool", "key", "--clearmodifiers", "ctrl+shift+F4")
            _wait_channel(settings, channel, None)  # hung up by the global key
            ended = phone.wait(lambda m: m.get("cue") == "ended", "the end announced")
            speech.wait_for(ended["say"], WAIT_S)
        finally:
            phone.stop()
            other.terminate()
