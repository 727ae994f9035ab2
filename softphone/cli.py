"""`warmline softphone`: the agent's phone, with its local web UI or headless.

    warmline softphone --headless --server URL --user NAME --password-stdin \\
        [--auto-answer] [--play FILE] [--record DIR] [--data-dir DIR]

Without --headless it serves the accessible UI on http://127.0.0.1:8765 (printed with its access
token). The password is read once from stdin (or asked for without echo) and never stored.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.cli import fail

app = typer.Typer(help="The agent's softphone (SIP, accessible local UI, headless mode).")


@app.callback(invoke_without_command=True)
def softphone(
    server: Annotated[str, typer.Option(help="The warmline server, e.g. https://cc.example.org")],
    user: Annotated[str, typer.Option(help="Your warmline user name.")],
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
    srtp: Annotated[str, typer.Option(help="Media encryption: off, optional or mandatory.")] = "off",
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Sign in, fetch your SIP settings from the server and run the phone until Ctrl+C."""
    from softphone.provisioning import ProvisioningError
    from softphone.runner import RunOptions, run

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    if srtp not in ("off", "optional", "mandatory"):
        raise typer.BadParameter("--srtp must be off, optional or mandatory")
    if play is not None and not play.is_file():
        raise typer.BadParameter(f"--play {play}: no such file")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("--password-stdin given but stdin had no password line")
    else:
        password = typer.prompt("Password", hide_input=True)
    host, _, port = (mqtt or "").partition(":")
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
    )
    del password
    try:
        code = asyncio.run(run(opts))
    except ProvisioningError as exc:
        raise fail(str(exc), 1) from exc
    raise typer.Exit(code)
