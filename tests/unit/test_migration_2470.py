"""Migration 2470 on SQLite and PostgreSQL: agent levels, campaigns' min_level, the practice flag on
recordings and the practice_calls table appear on the way up (existing agents are full agents,
existing recordings real calls) and go again on the way down."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, inspect, text

from warmline import migrate


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_2470_adds_levels_and_practice_and_takes_them_away(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        migrate.downgrade(db_url, "2460")
        engine.dispose()
        assert "level" not in _columns(engine, "agent_profiles")
        assert "practice_calls" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES"
                    " ('mei', 'agent', 'x', false, '2026-12-03 02:00:00+00')"
                )
            )
            uid = conn.execute(text("SELECT id FROM users WHERE name = 'mei'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO agent_profiles (user_id, daily_target_minutes, skills) VALUES"
                    " (:u, 240, '[]')"
                ),
                {"u": uid},
            )
        migrate.upgrade(db_url, "2470")
        engine.dispose()
        with engine.begin() as conn:
            assert conn.execute(text("SELECT level FROM agent_profiles")).scalar_one() == "agent"
        assert "min_level" in _columns(engine, "campaigns") and "practice" in _columns(
            engine, "call_recordings"
        )
        assert "practice_calls" in inspect(engine).get_table_names()
        migrate.downgrade(db_url, "2460")
        engine.dispose()
        assert "level" not in _columns(engine, "agent_profiles")
        assert "practice" not in _columns(engine, "call_recordings")
        migrate.upgrade(db_url, "head")
    finally:
        engine.dispose()
