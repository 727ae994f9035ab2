"""`warmline ivr ...`: check flows, render their prompts, try one on a lab number."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from core.cli import JsonOpt, cli_context, emit, fail
from core.i18n import _, ngettext
from ivr.check import Problem, check_file

ivr_app = typer.Typer(
    help="IVR flows: check them, render their prompts, try one in the lab.", no_args_is_help=True
)

PromptDirsOpt = Annotated[
    list[Path] | None,
    typer.Option("--prompts-dir", help="Also look for recorded prompt files here (repeatable)."),
]
FieldOpt = Annotated[
    list[str] | None, typer.Option("--field", "-f", help="A contact field as name=value (repeatable).")
]


def _fields(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise fail(_("--field '{pair}': write name=value", pair=pair))
        out[name.strip()] = value
    return out


@ivr_app.command("check")
def check(
    flows: Annotated[list[Path], typer.Argument(help="Flow YAML files.")],
    fields: Annotated[
        str | None,
        typer.Option(
            "--fields", help="The campaign list's columns, comma-separated (e.g. name,clinic,date)."
        ),
    ] = None,
    prompts_dir: PromptDirsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report every problem of each flow with its place; exit 2 when there are any, 0 when clean."""
    columns = [c.strip() for c in fields.split(",") if c.strip()] if fields is not None else None
    files: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for path in flows:
        flow, found = check_file(path, fields=columns, prompt_dirs=prompts_dir or [])
        problems += found
        files.append(
            {
                "file": str(path),
                "flow": flow.name if flow else None,
                "nodes": len(flow.nodes) if flow else None,
                "problems": len(found),
            }
        )
    lines = [p.text() for p in problems]
    for f in files:
        if not f["problems"]:
            lines.append(
                _("{file}: ok (flow {flow}, {n} nodes)", file=f["file"], flow=f["flow"], n=f["nodes"])
            )
    if problems:
        lines.append(ngettext("{n} problem", "{n} problems", len(problems)))
    data = {"ok": not problems, "files": files, "problems": [p.model_dump() for p in problems]}
    emit(data, as_json, "\n".join(lines))
    raise typer.Exit(2 if problems else 0)


@ivr_app.command("prompts")
def prompts(
    ctx: typer.Context,
    flow_file: Annotated[Path, typer.Argument(help="Flow YAML file.")],
    field: FieldOpt = None,
    prompts_dir: PromptDirsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render (or find cached) every prompt of a flow for one contact; shows files and timings."""
    from ivr.check import FlowError, load_flow
    from ivr.flow import render, resolve_prompt_file
    from ivr.tts import PromptCache, TtsError, wav_seconds

    values = _fields(field)
    try:
        flow = load_flow(flow_file, prompt_dirs=prompts_dir or [])
    except FlowError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    cache = PromptCache.for_settings(cli_context(ctx).settings, voice=flow.voice)
    rows: list[dict[str, Any]] = []
    try:
        for node_id, where, prompt in flow.all_prompts():
            started = time.perf_counter()
            if prompt.file is not None:
                source = resolve_prompt_file(prompt.file, flow.base_dir, tuple(prompts_dir or []))
                assert source is not None  # load_flow checked it
                path = cache.file_sync(source)
                what = prompt.file
            else:
                what, _missing = render(prompt.say or "", values)
                path = cache.speak_sync(what, flow.voice)
            took = time.perf_counter() - started
            rows.append(
                {
                    "node": node_id,
                    "where": ".".join(where),
                    "text": what,
                    "file": str(path),
                    "audio_seconds": round(wav_seconds(path), 2),
                    "made_in_seconds": round(took, 3),
                }
            )
    except TtsError as exc:
        raise fail(str(exc), 1) from exc
    text = "\n".join(
        f"{r['node']:<16} {r['audio_seconds']:>5.1f} s  {r['made_in_seconds'] * 1000:>6.0f} ms  {r['text']}"
        for r in rows
    )
    emit({"flow": flow.name, "prompts": rows, "cache": str(cache.root)}, as_json, text)


@ivr_app.command("run")
def run(
    ctx: typer.Context,
    flow_file: Annotated[Path, typer.Argument(help="Flow YAML file.")],
    number: Annotated[str, typer.Option(help="Number to call, e.g. 13800138000 (lab callee by last digit).")],
    endpoint: Annotated[
        str, typer.Option(help="Dial string; {number} is replaced.")
    ] = "Local/{number}@lab-pstn",
    field: FieldOpt = None,
    prompts_dir: PromptDirsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Call one number through ARI (by default the lab's simulated network) and run the flow on it."""
    from ivr.check import FlowError, load_flow

    if not number.lstrip("+").isdigit():
        raise fail(_("--number takes digits only"))
    values = _fields(field)
    try:
        flow = load_flow(flow_file, prompt_dirs=prompts_dir or [])
    except FlowError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    result = asyncio.run(
        _run_once(cli_context(ctx).settings, flow, number, endpoint, values, prompts_dir or [])
    )
    text = (
        f"outcome {result['outcome']} (escalate: {result['escalate']}); ended {result['ended']}"
        f"{' by ' + result['hangup_by'] if result['hangup_by'] else ''}; keys {result['keys'] or '-'}; "
        f"path {' > '.join(result['path'])}"
        + (f"; transfer to skill {result['transfer']['skill']}" if result["transfer"] else "")
        + (f"; error {result['error']}" if result["error"] else "")
    )
    emit(result, as_json, text)


async def _run_once(
    settings: Any, flow: Any, number: str, endpoint: str, values: dict[str, str], prompt_dirs: list[Path]
) -> dict[str, Any]:
    from core.ari import AriClient
    from core.ari_events import EventDispatcher
    from ivr.runner import run_flow
    from ivr.tts import PromptCache

    node = settings.asterisk_nodes[0]
    # An application of its own, so a running service's event stream is never taken over.
    app = f"{node.app}-ivr-cli-{uuid.uuid4().hex[:6]}"
    cache = PromptCache.for_settings(settings, voice=flow.voice)
    async with AriClient(node.ari_url, node.ari_user, settings.node_ari_password(node), app) as ari:
        dispatcher = EventDispatcher()
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        channel_id = f"ivr-cli-{uuid.uuid4().hex[:12]}"
        try:
            async with asyncio.timeout(10):
                await dispatcher.connected.wait()
            with dispatcher.subscription(channel_id) as events:
                await ari.originate(endpoint.format(number=number), channel_id=channel_id, timeout=30)
                start = await events.wait_for(
                    lambda e: e.get("type") in ("StasisStart", "ChannelDestroyed"), timeout=40
                )
                if start is None or start["type"] != "StasisStart":
                    cause = start.get("cause") if start else None
                    return {"outcome": None, "escalate": False, "ended": "not_answered", "hangup_by": None,
                            "keys": "", "path": [], "transfer": None, "error": None, "cause": cause}  # fmt: skip
                result = await run_flow(
                    ari, channel_id, flow, values, events, prompts=cache, recordings_dir=settings.recordings_dir,
                    prompt_dirs=prompt_dirs,
                )  # fmt: skip
                if result.transfer is not None:  # nobody to transfer to here: end the call
                    with contextlib.suppress(Exception):
                        await ari.hangup(channel_id)
                return result.model_dump(mode="json")
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
