"""The demo's agent desk: the service API in this process and one real headless softphone.

`warmline demo` runs, before its campaign:

1. the service API (uvicorn in a background thread, on ``api_host:api_port`` or a free port when
   that one is taken; the dialer is not started in it, the demo dials itself);
2. ``warmline softphone --headless --auto-answer`` for the demo agent ``agent1`` as a subprocess,
   speaking a Mandarin greeting (espeak-ng, 8 kHz, cached under ``var/demo``), after giving the
   agent the skill the campaign flow's transfer asks for;
3. a bounded wait until the server's ledger says the agent is ``available`` and its endpoint is
   registered to the lab's Asterisk.

Everything is stopped again on leaving the context (softphone first, so it can sign off through
the server), also on Ctrl-C, SIGTERM and errors. If the agent cannot be started the demo still
runs: `problem` says why, and callee 6 is then expected to end ``abandoned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

import uvicorn
from sqlalchemy import select

from agents.models import AgentProfile, SipAccount
from agents.profiles import get_profile
from agents.routing import set_state
from agents.states import current_state
from core.auth.models import User
from core.db import Database, utcnow
from core.secrets import get_secret
from core.settings import Settings
from ivr.flow import TransferNode
from warmline.lab import prompts

DEMO_AGENT = "agent1"
GREETING_NAME = "demo-agent-greeting"
GREETING_TEXT = "您好，我是接种咨询员，请问有什么可以帮您？"
READY_TIMEOUT = 45.0
STOP_TIMEOUT = 10.0


class AgentUnavailable(RuntimeError):
    """The demo agent could not be made available (the message says why)."""


def demo_dir(settings: Settings) -> Path:
    path = settings.var_dir / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def flow_skills(settings: Settings, flow: str) -> list[str]:
    """The skills the flow's transfer nodes ask for, in file order."""
    from ivr.check import find_flow, load_flow

    path = find_flow(settings.var_dir, flow)
    if path is None:
        raise AgentUnavailable(
            f"flow {flow!r} not found (looked in {settings.var_dir / 'flows'} and config/ivr)"
        )
    parsed = load_flow(path)
    return list(dict.fromkeys(n.skill for n in parsed.nodes.values() if isinstance(n, TransferNode)))


def make_greeting(settings: Settings) -> Path:
    """The agent's spoken greeting, 8 kHz mono 16-bit WAV, made once (cached by its text)."""
    folder = demo_dir(settings)
    try:
        prompts.make_prompts(folder, {GREETING_NAME: GREETING_TEXT})
    except prompts.PromptError as exc:
        raise AgentUnavailable(f"the agent's greeting could not be made: {exc}") from exc
    return folder / "warmline" / f"{GREETING_NAME}.wav"  # make_prompts writes into warmline/


def give_skills(db: Database, agent: str, skills: list[str]) -> list[str]:
    """Add `skills` to the agent's profile (kept: the skills it had). Returns its skills."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.name == agent))
        if user is None:
            raise AgentUnavailable(f"demo user {agent!r} does not exist")
        if session.scalar(select(SipAccount.endpoint).where(SipAccount.user_id == user.id)) is None:
            raise AgentUnavailable(f"demo user {agent!r} has no SIP account")
        profile = session.get(AgentProfile, user.id)
        if profile is None:
            profile = AgentProfile(user_id=user.id, skills=[])
            session.add(profile)
        merged = list(dict.fromkeys([*(profile.skills or []), *skills]))
        profile.skills = merged
        return merged


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ApiServer:
    """The service API under uvicorn in a daemon thread (the dialer is not started in it)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        from warmline.app import create_app, server_config

        self.host = settings.api_host
        self.port = settings.api_port if _port_free(self.host, settings.api_port) else _free_port(self.host)
        app = create_app(settings.model_copy(update={"dialer_enabled": False}), db)
        self.server = uvicorn.Server(
            server_config(app, self.host, self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise AgentUnavailable(f"the service API did not start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                raise AgentUnavailable(f"the service API did not start within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(STOP_TIMEOUT)


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


async def _endpoint_online(settings: Settings, endpoint: str) -> bool:
    from core.ari import AriClient
    from warmline.lab import lab_status

    st = lab_status(settings)
    async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
        info = await ari.get_endpoint("PJSIP", endpoint)
    return isinstance(info, dict) and info.get("state") == "online"


class DemoDesk:
    """The API in-process and one headless softphone for the demo agent (a context manager).

    Never raises for an agent that cannot be started: `ready` is False and `problem` says why.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        flow: str,
        agent: str = DEMO_AGENT,
        out: IO[str] | None = sys.stderr,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.db = db
        self.flow = flow
        self.agent = agent
        self.out = out
        self.ready_timeout = ready_timeout
        self.api: ApiServer | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = demo_dir(settings) / f"softphone-{agent}.log"
        self.heard_dir = demo_dir(settings) / f"{agent}-heard"
        self.skills: list[str] = []
        self.ready = False
        self.problem: str | None = None
        self.ready_after: float | None = None
        self._log: IO[bytes] | None = None
        self._old_term: Any = None

    # -- context -------------------------------------------------------------------------------

    def __enter__(self) -> DemoDesk:
        self._trap_sigterm()
        try:
            self.start()
        except AgentUnavailable as exc:
            self.problem = str(exc)
            self._say(f"agent: not available, callee 6 will end abandoned: {exc}")
            self.stop()
        except BaseException:
            self.stop()
            self._untrap_sigterm()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self._untrap_sigterm()

    def _trap_sigterm(self) -> None:
        """SIGTERM ends the demo like Ctrl-C does: through the `finally`s that stop what it started."""
        if threading.current_thread() is not threading.main_thread():
            return

        def terminate(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._old_term = signal.signal(signal.SIGTERM, terminate)

    def _untrap_sigterm(self) -> None:
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None

    def _say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        skills = flow_skills(self.settings, self.flow)
        self.skills = give_skills(self.db, self.agent, skills)
        greeting = make_greeting(self.settings)
        self.api = ApiServer(self.settings, self.db)
        self.api.start()
        self._say(f"api: {self.api.url} (in this process, for the demo's softphone)")
        password = get_secret(self.settings.var_dir, f"demo_password_{self.agent}")
        # A state left by an earlier run (a softphone killed while available) must not count.
        marker = utcnow()
        with self.db.session() as session:
            set_state(session, self.agent, "logged_out", "demo_start", since=marker)
        self.heard_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "warmline.cli",
            "softphone",
            "--headless",
            "--server",
            self.api.url,
            "--user",
            self.agent,
            "--password-stdin",
            "--auto-answer",
            "--play",
            str(greeting.resolve()),
            "--record",
            str(self.heard_dir.resolve()),
        ]
        self._log = self.log_path.open("wb")
        # Its own session: a Ctrl-C at the terminal reaches the demo, which stops the phone in
        # order (before the API it signs off through).
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(password.encode() + b"\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self._wait_ready(marker)
        self.ready = True
        self.ready_after = time.monotonic() - started
        self._say(
            f"agent: {self.agent} signed in with a headless softphone (pid {self.proc.pid}), "
            f"skills {', '.join(self.skills)}, available after {self.ready_after:.1f} s"
        )

    def _wait_ready(self, marker: datetime) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        state = "none"
        online = False
        # The endpoint has a random id, not the agent's name.
        with self.db.session() as session:
            endpoint = get_profile(session, self.agent).endpoint or self.agent
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise AgentUnavailable(
                    f"the softphone for {self.agent} exited with code {code}: {_tail(self.log_path)}"
                )
            with self.db.session() as session:
                row = current_state(session, self.agent)
                if row is not None and row.since > marker:
                    state = row.state
            if state == "available":
                with contextlib.suppress(Exception):
                    online = asyncio.run(_endpoint_online(self.settings, endpoint))
                if online:
                    return
            time.sleep(0.3)
        raise AgentUnavailable(
            f"{self.agent} was not available within {self.ready_timeout:.0f} s "
            f"(ledger: {state}, SIP endpoint {'online' if online else 'not registered'}; "
            f"softphone log {self.log_path}: {_tail(self.log_path)})"
        )

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # it signs off (logged_out) through the API
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            api, self.api = self.api, None
            if api is not None:
                api.stop()
