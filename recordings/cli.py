"""`warmline recordings ...`: call recordings from the command line.

warmline recordings analyze FILE [--json] [--agent-channel left|right] [--aggressiveness 0-3]
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from recordings.analytics import CallAnalytics

app = typer.Typer(help="Call recordings: acoustic analytics.", no_args_is_help=True)

PROGRESS_FROM_S = 600.0  # show a progress bar on a terminal for recordings at least this long


@app.callback()
def recordings() -> None:
    """Call recordings: acoustic analytics."""


class Channel(StrEnum):
    left = "left"
    right = "right"


@app.command("analyze")
def analyze(
    file: Annotated[Path, typer.Argument(help="A call recording: WAV (or FLAC, OGG), stereo or mono.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    agent_channel: Annotated[
        Channel, typer.Option("--agent-channel", help="The channel that carries the agent.")
    ] = Channel.left,
    aggressiveness: Annotated[
        int | None,
        typer.Option(
            "--aggressiveness",
            min=0,
            max=3,
            help="webrtcvad mode 0-3: 3 says 'speech' least readily. Default: 1, the validated setting.",
        ),
    ] = None,
) -> None:
    """Per side talk time and share, dead air, overtalk and longest monologues of one recording."""
    import soundfile as sf

    from recordings.analytics import AnalysisSettings, AnalyticsError, analyze_file

    settings = AnalysisSettings(agent_channel=agent_channel.value)
    if aggressiveness is not None:
        settings = settings.model_copy(update={"aggressiveness": aggressiveness})
    try:
        long_call = sys.stderr.isatty() and file.is_file() and sf.info(str(file)).duration >= PROGRESS_FROM_S
    except (sf.LibsndfileError, RuntimeError, OSError):
        long_call = False  # analyze_file says what is wrong with it
    try:
        if long_call:
            with typer.progressbar(length=1000, label="analysing", file=sys.stderr) as bar:
                done = [0]

                def tick(done_s: float, total_s: float) -> None:
                    now = int(1000 * done_s / total_s) if total_s > 0 else 1000
                    bar.update(now - done[0])
                    done[0] = now

                result = analyze_file(file, settings, progress=tick)
        else:
            result = analyze_file(file, settings)
    except AnalyticsError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    typer.echo(result.to_json() if as_json else summary(result))


def _n(count: int | None, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _pct(x: float | None) -> str:
    return f" ({x:.0%})" if x is not None else ""


def summary(r: CallAnalytics) -> str:
    """A few readable lines (a screen reader reads them in order; no tables, no colour needed)."""
    kind = "stereo" if r.channels == 2 else "mono"
    lines = [f"{r.file}: {r.duration_s:.1f} s, {kind}, {r.sample_rate} Hz"]
    if r.channels == 2:
        ch = r.settings.agent_channel
        lines.append(f"agent ({ch} channel) talked {r.talk_s.agent:.1f} s{_pct(r.talk_share.agent)}")
        other = "right" if ch == "left" else "left"
        lines.append(
            f"customer ({other} channel) talked {r.talk_s.customer:.1f} s{_pct(r.talk_share.customer)}"
        )
    else:
        lines.append(f"speech on the one track: {r.speech_s:.1f} s")
    lines.append(
        f"dead air {r.silence_s:.1f} s in {_n(r.silence_count, 'gap', 'gaps')}, longest {r.longest_silence_s:.1f} s"
        f" (before the first words {r.leading_silence_s:.1f} s, after the last {r.trailing_silence_s:.1f} s)"
    )
    if r.overtalk_s is not None:
        lines.append(f"overtalk {r.overtalk_s:.1f} s in {_n(r.overtalk_count, 'stretch', 'stretches')}")
        lines.append(
            f"longest monologue: agent {r.longest_monologue_s.agent:.1f} s,"
            f" customer {r.longest_monologue_s.customer:.1f} s"
        )
    if r.note:
        lines.append(f"note: {r.note}")
    return "\n".join(lines)
