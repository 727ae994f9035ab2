"""Migration 2460 on SQLite and PostgreSQL: help_requests, supervisor_actions and agent_cooldowns
appear on the way up (and take rows), and go again on the way down."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate

TABLES = {"help_requests", "supervisor_actions", "agent_cooldowns"}


def test_2460_adds_and_drops_the_help_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES, "the template is at head"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO help_requests (agent, call_ref, kind, state, at)"
                    " VALUES ('mei', 'att-1', 'help', 'open', '2026-12-03 02:00:00+00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO agent_cooldowns (agent, call_ref, reason, started_at, until) VALUES"
                    " ('mei', 'att-1', 'abusive', '2026-12-03 02:00:00+00', '2026-12-03 02:05:00+00')"
                )
            )
        migrate.downgrade(db_url, "2450")
        engine.dispose()
        assert not TABLES & set(inspect(engine).get_table_names())
        migrate.upgrade(db_url, "2460")
        engine.dispose()
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
