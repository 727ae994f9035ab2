"""The features' registrations: every CLI group users' scripts name, every worker, no route twice;
and the context the root command hands its commands."""

from __future__ import annotations

import typer

from core.cli import CliContext, cli_context
from core.db import Database
from core.settings import Settings
from tests.utils.cli import CliRunner
from warmline.cli import app
from warmline.features import collect

GROUPS = {
    "agents",
    "sip",
    "campaign",
    "lists",
    "dnc",
    "dialer",
    "pacing",
    "hotline",
    "cases",
    "ivr",
    "recordings",
    "qa",
    "softphone",
    "staffing",
    "workforce",
    "shifts",
    "practice",
    "transfers",
    "privacy",
}


def test_collect_names_every_group_worker_and_route_once() -> None:
    registry = collect()
    assert {name for name, _ in registry.command_groups} == GROUPS
    assert set(registry.workers) == {
        "agent-states",
        "call-quality",
        "screen-pops",
        "sip-guard",
        "dialer",
        "welfare-notifier",
        "recording-recovery",
        "hotline-staffing",
        "hours-warnings",
        "recording-retention",
        "prompt-retention",
        "cooldown-notices",
        "compliments",
    }
    assert "inbound" in registry.stasis and "practice" in registry.stasis
    routes = [
        (getattr(route, "path", ""), method)
        for router in registry.routers
        for route in router.routes
        for method in getattr(route, "methods", ())
    ]
    assert ("/api/welfare/alerts", "GET") in routes and ("/api/campaigns/{name}/stats", "GET") in routes
    assert ("/api/agents/me/transfers", "POST") in routes
    assert len(routes) == len(set(routes))
    assert collect() is not registry, "a fresh registry each time: nothing registers itself at import"


def test_root_lists_the_same_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in GROUPS | {"db", "users", "lab", "up", "demo"}:
        assert f" {group} " in result.output


def test_a_command_without_the_root_is_told_so(english: None) -> None:
    lone = typer.Typer()

    @lone.command()
    def show(ctx: typer.Context) -> None:
        cli_context(ctx)

    result = CliRunner().invoke(lone, [])
    assert isinstance(result.exception, RuntimeError) and "under `warmline`" in str(result.exception)


def test_settings_and_database_are_made_once_and_only_when_asked(settings: Settings, db: Database) -> None:
    made: list[str] = []

    def load() -> Settings:
        made.append("settings")
        return settings

    def open_db(_settings: Settings) -> Database:
        made.append("database")
        return db

    given = CliContext(load, open_db)
    assert made == []
    assert given.database() is given.database() is db and given.settings is settings
    assert made == ["settings", "database"]
    assert given.service(None).db is db
