"""`warmline privacy ...`: one citizen's data, and the keys of the data encrypted at rest.

warmline privacy export --phone NUMBER [--audio-dir DIR] [--json]
warmline privacy erase --phone NUMBER [--dry-run] [--json]     counts: contacts, attempts,
                                                              recordings, form_answers, alerts
warmline privacy rotate-key [--json]          a new key; every recording re-encrypted with it
warmline privacy encrypt-existing [--json]    recordings stored in clear, encrypted
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.i18n import _

privacy_app = typer.Typer(
    help="Privacy: export or erase one person's data; rotate the encryption key.", no_args_is_help=True
)

PhoneOpt = Annotated[str, typer.Option("--phone", help="The person's phone number (any usual form).")]


@privacy_app.callback()
def privacy() -> None:
    """Privacy: export or erase one person's data; rotate the encryption key."""


def _counts_text(counts: dict[str, int]) -> str:
    return _(
        "contacts {contacts}, call attempts {attempts}, recordings {recordings}, form answers {form_answers},"
        " welfare alerts {alerts}",
        **counts,
    )


@privacy_app.command("export")
def export_cmd(
    ctx: typer.Context,
    phone: PhoneOpt,
    audio_dir: Annotated[
        Path | None, typer.Option("--audio-dir", help="Also write the recordings (decrypted WAV, 0600) here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything held about one person (their right of access); the export is audited."""
    from warmline.privacy import service

    cli = cli_context(ctx)
    settings = cli.settings
    with cli.database().session() as session:
        try:
            found = service.find(session, service.e164_of(phone, settings.default_region))
        except service.PrivacyError as exc:
            raise fail(str(exc)) from exc
        data = service.export(session, settings, found, actor=CLI_ACTOR)
        counts = found.counts()
        if audio_dir is not None:
            written = service.export_audio(settings, found, audio_dir)
            data["audio_files"] = [str(p) for p in written]
    emit(data, as_json, _("held about this number: {counts}", counts=_counts_text(counts)))


@privacy_app.command("erase")
def erase_cmd(
    ctx: typer.Context,
    phone: PhoneOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be erased; erase nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase one person's data (their right to deletion). Do-not-call entries stay, so they are not
    called again; the audit log keeps that an erasure happened, not whose."""
    from warmline.privacy import service

    cli = cli_context(ctx)
    settings = cli.settings
    with cli.database().session() as session:
        try:
            found = service.find(session, service.e164_of(phone, settings.default_region))
        except service.PrivacyError as exc:
            raise fail(str(exc)) from exc
        counts = service.erase(session, settings, found, actor=CLI_ACTOR, dry_run=dry_run)
    head = _("would erase: {counts}") if dry_run else _("erased: {counts}")
    emit(counts, as_json, head.format(counts=_counts_text(counts)))


@privacy_app.command("rotate-key")
def rotate_key_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Make a new encryption key, re-encrypt every recording with it, retire the old keys."""
    from recordings.at_rest import rotate_key

    cli = cli_context(ctx)
    with cli.database().session() as session:
        report = rotate_key(session, cli.settings, actor=CLI_ACTOR).to_dict()
    text = _(
        "new key {key}: {done} recordings re-encrypted, {missing} missing, {failed} failed; retired keys: {retired}",
        key=report["key_id"],
        done=report["done"],
        missing=len(report["missing"]),
        failed=len(report["failed"]),
        retired=", ".join(report["retired_keys"]) or "-",
    )
    emit(report, as_json, text)
    if report["failed"]:
        raise typer.Exit(1)


@privacy_app.command("encrypt-existing")
def encrypt_existing_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Encrypt the recordings stored in clear (made before encryption was on)."""
    from recordings.at_rest import encrypt_existing

    cli = cli_context(ctx)
    with cli.database().session() as session:
        report = encrypt_existing(session, cli.settings, actor=CLI_ACTOR).to_dict()
    text = _(
        "{done} recordings encrypted ({already} already were), {missing} missing, {failed} failed",
        done=report["done"],
        already=report["already"],
        missing=len(report["missing"]),
        failed=len(report["failed"]),
    )
    emit(report, as_json, text)
    if report["failed"]:
        raise typer.Exit(1)
