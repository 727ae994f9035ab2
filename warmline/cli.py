"""The one command line: `warmline ...`. Each group is a thin shell over a feature's service."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Annotated, Any

import typer

from core.auth import service as auth
from core.auth.models import ROLE_NAMES, Role
from core.cli import CLI_ACTOR, CliContext, JsonOpt, cli_context, emit, fail
from core.db import Database
from core.i18n import LANGUAGE_NAMES, _, cli_locale, normalise, use_locale
from core.settings import Settings, get_settings
from warmline import accounts, migrate
from warmline.features import collect

app = typer.Typer(help="warmline: telephony for a home-based contact centre.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)
lab_app = typer.Typer(help="The lab: Asterisk and simulated callees on this machine.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(lab_app, name="lab")

FEATURES = collect()
for _name, _group in FEATURES.command_groups:
    app.add_typer(_group, name=_name)


def ready_database(settings: Settings) -> Database:
    """The database at the current schema; the embedded default needs no separate step."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    return Database(settings.db_url)


@app.callback()
def root(ctx: typer.Context) -> None:
    # Every command below reads settings and the migrated database through this (core.cli). A
    # caller that already handed one in (a test, through CliRunner.invoke(obj=...)) keeps it.
    # Messages for people speak WARMLINE_LANG, else LANG, until the command line ends.
    ctx.with_resource(use_locale(cli_locale(os.environ)))
    if not isinstance(ctx.obj, CliContext):
        ctx.obj = CliContext(get_settings, ready_database, stasis=FEATURES.stasis, workers=FEATURES.workers)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Migrate the database schema (default: to the newest revision)."""
    settings = cli_context(ctx).settings
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url, revision)
    typer.echo(_("database at revision {revision}", revision=migrate.current_revision(settings.db_url)))


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision the database is at."""
    typer.echo(migrate.current_revision(cli_context(ctx).settings.db_url) or _("empty"))


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail(_("--password-stdin given but standard input had no password line"))
        return line
    first: str = typer.prompt(_("Password"), hide_input=True)
    if typer.prompt(_("Repeat password"), hide_input=True) != first:
        raise fail(_("the two passwords differ"))
    return first


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[Role, typer.Option(help="agent, manager, qa, supervisor or admin")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    display_name: Annotated[str | None, typer.Option(help="Name shown to people.")] = None,
    language: Annotated[
        str | None, typer.Option(help="zh-CN or en (default: the browser's, else zh-CN).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user. An agent also gets a PJSIP endpoint with a generated secret."""
    cli = cli_context(ctx)
    settings = cli.settings
    password = read_password(password_stdin)
    db = cli.database()
    try:
        change = asyncio.run(
            accounts.add_user(
                settings,
                db,
                name,
                role,
                password,
                actor=CLI_ACTOR,
                display_name=display_name,
                language=language,
            )
        )
    except auth.AccountError as exc:
        raise fail(str(exc)) from exc
    role_name = _(ROLE_NAMES[role])
    if change.sip_endpoint:
        text = _(
            "added {name} ({role}), SIP endpoint {endpoint}",
            name=name,
            role=role_name,
            endpoint=change.sip_endpoint,
        )
    else:
        text = _("added {name} ({role})", name=name, role=role_name)
    emit(change.__dict__, as_json, text + _sync_text(change.sync))


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Disable a user: tokens revoked, SIP endpoint removed from Asterisk. Nothing is deleted."""
    cli = cli_context(ctx)
    settings, db = cli.settings, cli.database()
    try:
        change = asyncio.run(accounts.disable_user(settings, db, name, actor=CLI_ACTOR))
    except auth.AccountError as exc:
        raise fail(str(exc)) from exc
    emit(change.__dict__, as_json, _("disabled {name}", name=name) + _sync_text(change.sync))


@users_app.command("set")
def users_set(
    ctx: typer.Context,
    name: str,
    language: Annotated[
        str, typer.Option(help="zh-CN, en, or auto (follow the browser's Accept-Language, else zh-CN).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Change a user's settings: the language their pages, announcements and messages speak."""
    try:
        with cli_context(ctx).database().session() as session:
            user = auth.set_language(session, name, language, actor=CLI_ACTOR)
            chosen = user.language
    except auth.AccountError as exc:
        raise fail(str(exc)) from exc
    data = {"name": name, "language": chosen}
    if chosen:
        text = _(
            "{name} now reads and hears {language}", name=name, language=LANGUAGE_NAMES[normalise(chosen)]
        )
    else:
        text = _("{name} now follows the browser's language", name=name)
    emit(data, as_json, text)


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users with their roles and state."""
    with cli_context(ctx).database().session() as session:
        rows = [
            {
                "name": u.name,
                "role": u.role.value,
                "disabled": u.disabled,
                "language": u.language,
                "created_at": u.created_at.isoformat(),
            }
            for u in auth.list_users(session)
        ]
    browser, active, disabled = _("the browser's"), _("active"), _("disabled")
    lines = []
    for r in rows:
        role = _(ROLE_NAMES[Role(str(r["role"]))])
        state = disabled if r["disabled"] else active
        lines.append(f"{r['name']:<24} {role:<11} {state:<9} {r['language'] or browser}")
    emit(rows, as_json, "\n".join(lines) or _("no users yet"))


def _sync_text(sync: dict[str, str]) -> str:
    return "".join(_("; asterisk {node}: {result}", node=node, result=what) for node, what in sync.items())


@lab_app.command("start")
def lab_start(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Start the lab's Asterisk and simulated callees (no-op when running)."""
    from warmline.lab import LabError
    from warmline.lab import lab_start as start

    try:
        status = start(cli_context(ctx).settings)
    except LabError as exc:
        raise fail(str(exc)) from exc
    emit(status.model_dump(), as_json, _lab_text(status.model_dump()))


@lab_app.command("stop")
def lab_stop(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Stop the lab's Asterisk."""
    from warmline.lab import lab_status as status_of
    from warmline.lab import lab_stop as stop

    settings = cli_context(ctx).settings
    stop(settings)
    status = status_of(settings)
    emit(status.model_dump(), as_json, _lab_text(status.model_dump()))


@lab_app.command("status")
def lab_status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Say whether the lab runs, and how to reach it (ARI, AMI, SIP)."""
    from warmline.lab import lab_status as status_of

    status = status_of(cli_context(ctx).settings)
    emit(status.model_dump(), as_json, _lab_text(status.model_dump()))


def _lab_text(s: dict[str, Any]) -> str:
    if s["state"] != "running":
        return _("lab: {state}", state=s["state"])
    port = s.get("ami_port")
    ami = _("AMI off") if port is None else _("AMI 127.0.0.1:{port} (loopback)", port=port)
    return _(
        "lab: running (pid {pid}); ARI {url} as {user}; {ami}; SIP {host}:{port} (loopback);"
        " agents: SIP over TLS {host}:{tls_port}, CA {ca}",
        pid=s.get("pid"),
        url=s["ari_url"],
        user=s["ari_user"],
        ami=ami,
        host=s["sip_host"],
        port=s["sip_port"],
        tls_port=s["sip_tls_port"],
        ca=s["ca_file"],
    )


@app.command("demo")
def demo(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    per_digit: Annotated[int, typer.Option(min=1, max=50, help="Contacts per callee behaviour.")] = 3,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Then run the service.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome table as JSON and exit (no service).")
    ] = False,
) -> None:
    """Run a real vaccination campaign in the lab over every callee behaviour, with the service API
    and one headless softphone agent (agent1) taking the callers who press 0; print each contact's
    outcome against its callee's behaviour (exit 1 on any mismatch) and the agent calls' stereo
    recordings, then run the service."""
    from warmline.demo import prepare_demo
    from warmline.demo_campaign import recordings_text, run_demo, table_text

    cli = cli_context(ctx)
    settings, db = cli.settings, cli.database()
    typer.echo(prepare_demo(settings, db), err=as_json)
    started = time.monotonic()
    rows = run_demo(settings, db, per_digit=per_digit)
    bad = sum(1 for r in rows if not r["match"])
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        typer.echo(table_text(rows))
        typer.echo(recordings_text(rows))
    typer.echo(_("demo ran {seconds} s", seconds=round(time.monotonic() - started)), err=as_json)
    if bad:
        raise typer.Exit(1)
    if serve and not as_json:
        up(ctx, host, port)


@app.command("up")
def up(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the service: API, console and background workers under uvicorn."""
    import uvicorn

    from warmline.app import create_app, server_config

    cli = cli_context(ctx)
    settings, db = cli.settings, cli.database()
    app = create_app(settings, db)
    uvicorn.Server(server_config(app, host or settings.api_host, port or settings.api_port)).run()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
