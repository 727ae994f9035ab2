"""Putting the softphone together: sign in, fetch SIP settings, start the engine, run a face.

Used by `warmline softphone` (headless, or with the local web UI). The warmline password is used
once to get a token and then dropped; the SIP password stays in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from core.settings import Settings
from softphone.desk import Desk, PageFocus
from softphone.engine import DEFAULT_CODECS, Engine, EngineConfig
from softphone.hotkeys.keys import KeySpec
from softphone.outbox import WrapUpOutbox
from softphone.phone import Announcement, PhoneOptions, Softphone
from softphone.presence import AgentBus, AgentStatus, BusPublisher, HttpPublisher, StatePublisher
from softphone.provisioning import ServerClient
from softphone.server_pops import ScreenPopFeed

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    server: str
    user: str
    password: str = field(repr=False)
    headless: bool = True
    auto_answer: bool = False
    play: Path | None = None
    record: Path | None = None
    srtp: Literal["off", "optional", "mandatory"] | None = None  # None: what the server requires
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    topic_prefix: str = "warmline"
    ui_host: str = "127.0.0.1"
    ui_port: int = 8765
    sip_port: int = 0
    input_device: str | None = None
    output_device: str | None = None
    # Where unsent wrap-ups are kept across restarts; None: the user's data folder with the UI,
    # memory only when headless.
    data_dir: Path | None = None
    out: TextIO = field(default=sys.stdout, repr=False)
    # The desk (softphone/desk.py): global keys (action -> key, from hotkeys.keys.hotkey_map; empty:
    # none) and speech through the screen reader (softphone/speech: auto, off, speechd, zdsr, tolk, sapi).
    hotkeys: dict[str, KeySpec] = field(default_factory=dict)
    speech: str = "off"
    on_signed_in: Callable[[str], None] | None = field(default=None, repr=False)
    open_page: bool = False  # open the page in the default browser once it is served


def _codecs(offered: list[str]) -> tuple[str, ...]:
    """The server's codec list, G.722 always first when it is offered at all."""
    names = [c.upper() for c in offered] or list(DEFAULT_CODECS)
    names.sort(key=lambda n: 0 if n == "G722" else 1)
    return tuple(names)


def _publisher(opts: RunOptions, server: ServerClient) -> StatePublisher:
    if opts.mqtt_host:
        settings = Settings(
            mqtt_host=opts.mqtt_host, mqtt_port=opts.mqtt_port, topic_prefix=opts.topic_prefix
        )
        bus = AgentBus(
            settings.mqtt_host,
            settings.mqtt_port,
            prefix=settings.topic_prefix,
            component=f"softphone-{opts.user}",
            agent=opts.user,
        )
        return BusPublisher(bus)
    return HttpPublisher(server)


def _printer(out: TextIO, phone: Softphone) -> asyncio.Task[None]:
    async def follow() -> None:
        said = 0
        async for _ in phone.changes():
            fresh: list[Announcement] = [a for a in phone.announcements if a.id > said]
            for a in fresh:
                said = a.id
                out.write(json.dumps({"say": a.text, "cue": a.cue, "registered": phone.registered}) + "\n")
            out.flush()

    return asyncio.create_task(follow(), name="announce-stdout")


def default_data_dir() -> Path:
    """Where an agent's phone keeps what must survive a restart (the wrap-ups not yet sent)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "warmline" / "softphone"


def outbox_path(data_dir: Path, server: str, user: str) -> Path:
    """One outbox file per server and agent, so a wrap-up is only ever sent where it belongs."""
    where = re.sub(r"[^A-Za-z0-9.-]+", "_", server.split("://", 1)[-1]).strip("_")
    who = re.sub(r"[^\w.-]+", "_", user)
    return data_dir / f"wrapups-{who}@{where}.jsonl"


async def run(opts: RunOptions, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    server = ServerClient(opts.server)
    await server.login(opts.user, opts.password)
    opts.password = ""
    if opts.on_signed_in is not None:
        opts.on_signed_in(opts.user)
    sip = await server.sip_account(srtp=opts.srtp)
    engine = Engine(
        EngineConfig(
            headless=opts.headless,
            codecs=_codecs(server.codecs),
            play_file=opts.play,
            record_dir=opts.record,
            sip_port=opts.sip_port,
        )
    )
    publisher = _publisher(opts, server)
    if isinstance(publisher, BusPublisher):
        await publisher.bus.start()
    status = AgentStatus(opts.user, publisher)
    data_dir = opts.data_dir if opts.data_dir is not None else (None if opts.headless else default_data_dir())
    outbox = WrapUpOutbox(
        server.post_wrapup, path=outbox_path(data_dir, opts.server, opts.user) if data_dir else None
    )
    if outbox.path is None:
        log.warning("no --data-dir: wrap-ups the server has not taken are kept in memory only")
    phone = Softphone(
        engine,
        status,
        server=server,
        options=PhoneOptions(auto_answer=opts.auto_answer, auto_wrapup=opts.headless),
        on_wrapup=outbox.submit,
    )
    outbox.on_settled = phone.wrapup_settled
    sender = asyncio.create_task(outbox.run(), name="wrapup-outbox")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await engine.start()
    printer = _printer(opts.out, phone)
    ui_task: asyncio.Task[None] | None = None
    desk = _desk(opts, phone)
    pops: asyncio.Task[None] | None = None
    try:
        await desk.start()
        await phone.start(sip)
        # Calls put through the open line (nailed up) bring no INVITE: their pops come from here.
        pops = asyncio.create_task(ScreenPopFeed(server, phone).run(), name="screen-pops")
        if not opts.headless:
            ui_task = asyncio.create_task(_serve_ui(opts, phone, engine, desk.focus), name="ui")
        await stop.wait()
    finally:
        if pops is not None:
            pops.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pops
        await desk.close()
        if ui_task is not None:
            ui_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ui_task
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        if outbox.pending and outbox.path is None:
            log.error("%d wrap-ups never reached the server and are lost", len(outbox.pending))
        await phone.close()
        await engine.close()
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
        await publisher.close()
        await server.aclose()
    return 0


def _desk(opts: RunOptions, phone: Softphone) -> Desk:
    """The desk as the options ask (keys already checked by the CLI: a bad one never gets here)."""
    from softphone.hotkeys import platform_backend
    from softphone.speech import SpeechOutput, platform_speakers

    speakers = platform_speakers(opts.speech)
    return Desk(
        phone,
        keys=opts.hotkeys,
        backend=platform_backend() if opts.hotkeys else None,
        speech=SpeechOutput(speakers) if speakers else None,
    )


async def _serve_ui(opts: RunOptions, phone: Softphone, engine: Engine, focus: PageFocus) -> None:
    import uvicorn

    from softphone.audio import attach_sound
    from softphone.ui.app import create_ui

    audio = await attach_sound(engine, opts.input_device, opts.output_device)
    ui = create_ui(phone, audio=audio, page_focus=focus)
    config = uvicorn.Config(ui, host=opts.ui_host, port=opts.ui_port, log_level="warning")
    server = uvicorn.Server(config)
    url = f"http://{opts.ui_host}:{opts.ui_port}/?t={ui.state.token}"
    opts.out.write(json.dumps({"ui": url}) + "\n")
    opts.out.flush()
    opener = asyncio.create_task(_open_when_listening(server, url)) if opts.open_page else None
    await server.serve()
    if opener is not None:
        opener.cancel()


async def _open_when_listening(server: Any, url: str) -> None:
    import webbrowser

    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for "listening"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(webbrowser.open, url)
