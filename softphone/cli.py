"""`warmline softphone`: the agent's phone, with its local web UI or headless.

    warmline softphone --headless --server URL --user NAME --password-stdin \\
        [--auto-answer] [--play FILE] [--record DIR] [--data-dir DIR]

Without --headless it serves the accessible UI on http://127.0.0.1:8765 (printed with its access
token). The password is read once from stdin (or asked for without echo) and never stored.

The server and user name may come from the agent's settings file (softphone/agent_config.py), and
so may the desk's global keys (`--hotkey answer=Ctrl+Shift+F2`, `--no-hotkeys`) and speech through
the screen reader while the page is not in focus (`--speech auto|off|speechd|zdsr|tolk|sapi`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from core.cli import fail
from core.i18n import _
from softphone.agent_config import AgentConfig, ConfigError, load_config, remember_user
from softphone.hotkeys.keys import HotkeyError, KeySpec, hotkey_map
from softphone.speech import CHOICES

app = typer.Typer(help="The agent's softphone (SIP, accessible local UI, headless mode).")


@app.callback(invoke_without_command=True)
def softphone(
    server: Annotated[
        str | None,
        typer.Option(help="The warmline server, e.g. https://cc.example.org (default: the settings file's)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Your warmline user name (default: the one used last; else asked).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    headless: Annotated[
        bool, typer.Option("--headless", help="No UI, no sound device (lab, load tests).")
    ] = False,
    auto_answer: Annotated[bool, typer.Option("--auto-answer", help="Answer every call at once.")] = False,
    play: Annotated[
        Path | None, typer.Option("--play", help="WAV (16-bit mono) to speak into every call, looped.")
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Folder for one WAV per call of what you hear.")
    ] = None,
    srtp: Annotated[
        str | None,
        typer.Option(
            help="Media encryption: off, optional or mandatory (default: what the server requires,"
            " mandatory SRTP for agents)."
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(help="Publish states on this MQTT broker (HOST[:PORT]) instead of via the server."),
    ] = None,
    ui_port: Annotated[int, typer.Option(help="Port of the local UI on 127.0.0.1.")] = 8765,
    sip_port: Annotated[int, typer.Option(help="Local SIP port (0: any free one).")] = 0,
    input_device: Annotated[str | None, typer.Option(help="Microphone (name or number).")] = None,
    output_device: Annotated[str | None, typer.Option(help="Headphones (name or number).")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder where wrap-ups not yet sent to the server are kept across restarts"
            " (default: ~/.local/share/warmline/softphone with the UI; memory only when --headless).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file (default: softphone.toml in %APPDATA%\\warmline or ~/.config/warmline).",
        ),
    ] = None,
    hotkeys: Annotated[
        bool | None,
        typer.Option(
            "--hotkeys/--no-hotkeys",
            help="Keys that work from any window (default: on, off when --headless).",
        ),
    ] = None,
    hotkey: Annotated[
        list[str] | None,
        typer.Option("--hotkey", help="ACTION=KEY, e.g. answer=Ctrl+Shift+F2 or mute=off (repeatable)."),
    ] = None,
    speech: Annotated[
        str | None,
        typer.Option(
            help="Say announcements through the screen reader while the page is not in focus:"
            " auto, off, speechd, zdsr, tolk, sapi (default: auto, off when --headless)."
        ),
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open-page", help="Open the phone page in the browser.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Sign in, fetch your SIP settings from the server and run the phone until Ctrl+C."""
    from softphone.provisioning import ProvisioningError
    from softphone.runner import RunOptions, run

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    desk = desk_settings(
        config, server, user, headless=headless, hotkeys=hotkeys, hotkey=hotkey, speech=speech
    )
    server, user = desk.server, desk.user
    if srtp not in (None, "off", "optional", "mandatory"):
        raise typer.BadParameter("--srtp must be off, optional or mandatory")
    if play is not None and not play.is_file():
        raise typer.BadParameter(f"--play {play}: no such file")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("--password-stdin given but stdin had no password line")
    else:
        password = typer.prompt(_("Password"), hide_input=True)
    host, _sep, port = (mqtt or "").partition(":")
    opts = RunOptions(
        server=server,
        user=user,
        password=password,
        headless=headless,
        auto_answer=auto_answer,
        play=play,
        record=record,
        srtp=srtp,  # type: ignore[arg-type]
        mqtt_host=host or None,
        mqtt_port=int(port or 1883),
        ui_port=ui_port,
        sip_port=sip_port,
        input_device=input_device,
        output_device=output_device,
        data_dir=data_dir,
        hotkeys=desk.keys,
        speech=desk.speech,
        on_signed_in=desk.remember,
        open_page=open_page,
    )
    del password
    try:
        code = asyncio.run(run(opts))
    except ProvisioningError as exc:
        raise fail(str(exc), 1) from exc
    raise typer.Exit(code)


@dataclass
class DeskSettings:
    """What the command line and the settings file decide together (the command line wins)."""

    server: str
    user: str
    keys: dict[str, KeySpec]
    speech: str
    config: AgentConfig

    def remember(self, user: str) -> None:
        try:
            remember_user(self.config, user)
        except OSError as exc:  # a read-only profile must not stop the phone
            logging.getLogger(__name__).warning("user name not remembered: %s", exc)


def desk_settings(
    config_path: Path | None,
    server: str | None,
    user: str | None,
    *,
    headless: bool,
    hotkeys: bool | None,
    hotkey: list[str] | None,
    speech: str | None,
) -> DeskSettings:
    """Server, user, global keys and speech from the options over the settings file; a clear error
    (the file, the key, the action) for anything wrong, before anything starts."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    server = server or config.server
    if not server:
        raise fail(_('No server: give --server URL or put server = "URL" in {path}.', path=config.path))
    user = user or config.user or typer.prompt(_("User name"))
    chosen = dict(config.hotkeys)
    for item in hotkey or []:
        action, sep, key = item.partition("=")
        if not sep:
            raise typer.BadParameter(
                _("--hotkey {item}: write ACTION=KEY, e.g. answer=Ctrl+Shift+F2.", item=item)
            )
        chosen[action.strip()] = key.strip()
    keys: dict[str, KeySpec] = {}
    if hotkeys if hotkeys is not None else not headless:
        try:
            keys = hotkey_map(chosen)
        except HotkeyError as exc:
            raise fail(_("Hot keys: {problems}", problems=str(exc))) from exc
    said = speech or ("off" if headless else config.speech or "auto")
    if said not in CHOICES:
        raise typer.BadParameter(_("--speech must be one of {choices}.", choices=", ".join(CHOICES)))
    return DeskSettings(server=server, user=user, keys=keys, speech=said, config=config)
