"""`warmline recordings ...`: call recordings from the command line.

warmline recordings analyze FILE [--json] [--agent-channel left|right] [--aggressiveness 0-3]
warmline recordings register FILE [--campaign NAME] [--agent NAME] [--contact ID] [--started ISO] [--json]
warmline recordings list [--agent NAME] [--json]
warmline recordings verify [--json]          exit 1 when a file is missing or corrupt
warmline recordings purge [--dry-run] [--json]
warmline recordings retention CAMPAIGN [DAYS]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import column, select
from sqlalchemy import table as sa_table
from sqlalchemy.orm import Session

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.i18n import _, ngettext

if TYPE_CHECKING:
    from recordings.analytics import AnalysisSettings, CallAnalytics

app = typer.Typer(
    help="Call recordings: registry, storage, retention, acoustic analytics.", no_args_is_help=True
)

PROGRESS_FROM_S = 600.0  # show a progress bar on a terminal for recordings at least this long


@app.callback()
def recordings() -> None:
    """Call recordings: registry, storage, retention, acoustic analytics."""


class Channel(StrEnum):
    left = "left"
    right = "right"


@app.command("analyze")
def analyze(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="A call recording: WAV (or FLAC, OGG), stereo or mono; or a registered recording's id."
        ),
    ],
    as_json: JsonOpt = False,
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
    if not file.exists() and _looks_like_id(str(file)):
        typer.echo(_analyze_stored(ctx, str(file), settings, as_json))
        return
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
        raise fail(str(exc)) from exc
    typer.echo(result.to_json() if as_json else summary(result))


def _looks_like_id(text: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _analyze_stored(ctx: typer.Context, rec_id: str, settings: AnalysisSettings, as_json: bool) -> str:
    """A registered recording analysed through the decrypting reader (audited as a listening)."""
    from core.audit import audit
    from recordings import service
    from recordings.analytics import AnalyticsError, analyze_file

    cli = cli_context(ctx)
    with cli.database().session() as session:
        try:
            rec = service.get_recording(session, rec_id)
            with service.open_recording(cli.settings, rec) as f:
                result = analyze_file(f, settings, name=rec_id)
        except (service.RecordingError, AnalyticsError) as exc:
            raise fail(str(exc)) from exc
        audit(session, CLI_ACTOR, "recording.analyze", rec_id)
    return result.to_json() if as_json else summary(result)


def _s(x: float | None) -> str:
    return format(x or 0.0, ".1f")


def _pct(x: float | None) -> str:
    return f" ({x:.0%})" if x is not None else ""


def summary(r: CallAnalytics) -> str:
    """A few readable lines (a screen reader reads them in order; no tables, no colour needed)."""
    kind = _("stereo") if r.channels == 2 else _("mono")
    lines = [
        _("{file}: {s} s, {kind}, {rate} Hz", file=r.file, s=_s(r.duration_s), kind=kind, rate=r.sample_rate)
    ]
    if r.channels == 2:
        left, right = _("left"), _("right")
        ch, other = (left, right) if r.settings.agent_channel == "left" else (right, left)
        said = _("agent ({channel} channel) talked {s} s", channel=ch, s=_s(r.talk_s.agent))
        lines.append(said + _pct(r.talk_share.agent))
        said = _("customer ({channel} channel) talked {s} s", channel=other, s=_s(r.talk_s.customer))
        lines.append(said + _pct(r.talk_share.customer))
    else:
        lines.append(_("speech on the one track: {s} s", s=_s(r.speech_s)))
    lines.append(
        ngettext(
            "dead air {s} s in {n} gap, longest {longest} s (before the first words {first} s, after the last"
            " {last} s)",
            "dead air {s} s in {n} gaps, longest {longest} s (before the first words {first} s, after the last"
            " {last} s)",
            r.silence_count or 0,
            s=_s(r.silence_s),
            longest=_s(r.longest_silence_s),
            first=_s(r.leading_silence_s),
            last=_s(r.trailing_silence_s),
        )
    )
    if r.overtalk_s is not None:
        lines.append(
            ngettext(
                "overtalk {s} s in {n} stretch",
                "overtalk {s} s in {n} stretches",
                r.overtalk_count or 0,
                s=_s(r.overtalk_s),
            )
        )
        lines.append(
            _(
                "longest monologue: agent {agent} s, customer {customer} s",
                agent=_s(r.longest_monologue_s.agent),
                customer=_s(r.longest_monologue_s.customer),
            )
        )
    if r.note:
        lines.append(_("note: {note}", note=r.note))
    return "\n".join(lines)


# --- the registry: register, list, verify, purge, retention -----------------------------------


# A recording names its campaign by the foreign key call_recordings.campaign_id -> campaigns.id;
# the command line reads that table through the key's own schema, not through the dialer's model.
_CAMPAIGNS = sa_table("campaigns", column("id"), column("name"), column("elder_welfare"))


@dataclass(frozen=True)
class _CampaignRef:
    id: int
    name: str
    elder_welfare: bool


def _campaign(session: Session, campaign: str) -> _CampaignRef:
    by_name = select(_CAMPAIGNS).where(_CAMPAIGNS.c.name == campaign)
    row = session.execute(by_name).first()
    if row is None and campaign.isdigit():
        row = session.execute(select(_CAMPAIGNS).where(_CAMPAIGNS.c.id == int(campaign))).first()
    if row is None:
        raise fail(_("campaign '{name}': no such campaign (see `warmline campaign list`)", name=campaign))
    return _CampaignRef(int(row.id), str(row.name), bool(row.elder_welfare))


def _when(text: str | None, what: str, timezone: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(
            _("{what} '{text}': give an ISO date-time, e.g. 2026-11-24T09:30:00+08:00", what=what, text=text)
        ) from exc
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value


@app.command("register")
def register_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A finished call recording (WAV), e.g. an import.")],
    campaign: Annotated[str | None, typer.Option("--campaign", "-c", help="The campaign's name.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="The agent's user name.")] = None,
    contact: Annotated[int | None, typer.Option("--contact", help="The contact's id.")] = None,
    started: Annotated[
        str | None, typer.Option("--started", help="When the call started (ISO); default: the file's time.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="The call's outcome, e.g. opted_out.")
    ] = None,
    escalated: Annotated[bool, typer.Option("--escalated", help="The call raised a welfare alert.")] = False,
    source: Annotated[str, typer.Option("--source", help="Where it came from.")] = "import",
    as_json: JsonOpt = False,
) -> None:
    """Register a recording: copied into the store by date under a UUID name, checksummed, analysed."""
    from recordings import service

    cli = cli_context(ctx)
    settings = cli.settings
    started_at = _when(started, "--started", settings.timezone)
    if started_at is None:
        if not file.is_file():
            raise fail(_("{path}: no such file", path=file))
        started_at = datetime.fromtimestamp(file.stat().st_mtime, UTC)
    with cli.database().session() as session:
        ref = _campaign(session, campaign) if campaign is not None else None
        try:
            rec = service.register_recording(
                session,
                settings,
                file,
                campaign_id=ref.id if ref else None,
                campaign=ref.name if ref else None,
                elder_welfare=ref.elder_welfare if ref else False,
                contact_id=contact,
                agent=agent,
                started_at=started_at,
                ended_at=None,
                source=source,
                outcome=outcome,
                escalated=escalated,
                actor=CLI_ACTOR,
            )
        except service.RecordingError as exc:
            raise fail(str(exc)) from exc
        data = service.describe(rec)
        data["analytics_error"] = rec.analytics_error
    text = _(
        "registered {id}: {s} s, {channels} ch, {rate} Hz, {size} bytes, sha256 {sha}…; stored as {path}",
        id=data["id"],
        s=_s(data["duration_s"]),
        channels=data["channels"],
        rate=data["sample_rate"],
        size=data["size_bytes"],
        sha=data["sha256"][:12],
        path=data["path"],
    ) + (_(" (encrypted)") if data["encrypted"] else "")
    emit(data, as_json, text)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's calls.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List registered recordings, newest first."""
    from recordings import service
    from recordings.models import CallRecording

    with cli_context(ctx).database().session() as session:
        q = select(CallRecording).order_by(CallRecording.started_at.desc()).limit(limit)
        if agent:
            q = q.where(CallRecording.agent == agent)
        rows = [service.describe(r) for r in session.scalars(q)]
    lines = [
        f"{r['id']}  {r['started_at'][:16]}  {r['agent'] or '-':<12} {r['duration_s'] or 0:7.1f} s  {r['status']}"
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) or _("no recordings registered"))


@app.command("verify")
def verify_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check every recording's file: present, same size and checksum, readable audio. Exit 1 on problems."""
    from recordings import service

    cli = cli_context(ctx)
    with cli.database().session() as session:
        report = service.verify(session, cli.settings, actor=CLI_ACTOR).to_dict()
    lines = [
        _(
            "checked {checked}: {ok} ok, {missing} missing, {corrupt} corrupt",
            checked=report["checked"],
            ok=report["ok"],
            missing=report["missing"],
            corrupt=report["corrupt"],
        )
    ]
    lines += [f"  {p['status']}: {p['recording_id']} — {p['reason']}" for p in report["problems"]]
    emit(report, as_json, "\n".join(lines))
    if report["problems"]:
        raise typer.Exit(1)


@app.command("purge")
def purge_cmd(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete recordings past their campaign's retention (each deletion is audited)."""
    from recordings import service

    cli = cli_context(ctx)
    with cli.database().session() as session:
        report = service.purge(session, cli.settings, dry_run=dry_run, actor=CLI_ACTOR).to_dict()
    n = report["count"]
    if dry_run:
        head = ngettext("would purge {n} recording", "would purge {n} recordings", n)
    else:
        head = ngettext("purged {n} recording", "purged {n} recordings", n)
    lines = [head]
    lines += [
        f"  {r['id']}  "
        + _("started {day}, kept {days} days", day=r["started_at"][:10], days=r["retention_days"])
        for r in report["recordings"]
    ]
    emit(report, as_json, "\n".join(lines))


@app.command("retention")
def retention_cmd(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign's name.")],
    days: Annotated[
        int | None, typer.Argument(help="Keep its recordings this many days; omit to show.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set how long a campaign's recordings are kept."""
    from recordings import service
    from recordings.models import RecordingRetention

    cli = cli_context(ctx)
    settings = cli.settings
    with cli.database().session() as session:
        cid = _campaign(session, campaign).id
        assert cid is not None
        if days is not None:
            try:
                service.set_retention(session, cid, days, CLI_ACTOR)
            except service.RecordingError as exc:
                raise fail(str(exc)) from exc
        row = session.get(RecordingRetention, cid)
        kept = row.retention_days if row else settings.recordings_retention_days
    data = {"campaign": campaign, "retention_days": kept}
    said = (
        _("{campaign}: recordings kept {days} days", campaign=campaign, days=kept)
        if kept
        else _("{campaign}: recordings kept forever", campaign=campaign)
    )
    emit(data, as_json, said)
