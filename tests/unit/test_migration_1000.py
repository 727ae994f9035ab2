"""Migration 1000 on SQLite and PostgreSQL: users gain `language` (no choice: NULL), in place, so
the tokens and profiles that refer to a user survive the way up and the way down."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from warmline import migrate


def test_1000_adds_the_language_and_loses_nothing_either_way(db_url: str) -> None:
    migrate.downgrade(db_url, "0940")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, name, role, password_hash, disabled, created_at)"
                    " VALUES (1, 'mei', 'agent', 'x', false, '2026-11-24 02:00:00+00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, token_hash, label, created_at, revoked)"
                    " VALUES (1, 1, 'h', 'login', '2026-11-24 02:00:00+00', false)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO agent_profiles (user_id, daily_target_minutes, skills, lines, languages)"
                    " VALUES (1, 240, '[]', '[]', '[]')"
                )
            )
        migrate.upgrade(db_url, "1000")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name, language FROM users")).all() == [("mei", None)]
            conn.execute(text("UPDATE users SET language = 'en' WHERE id = 1"))
        migrate.downgrade(db_url, "0940")
        with engine.connect() as conn:
            counts = [
                conn.execute(text(query)).scalar()
                for query in (
                    "SELECT count(*) FROM users",
                    "SELECT count(*) FROM api_tokens",
                    "SELECT count(*) FROM agent_profiles",
                )
            ]
        assert counts == [1, 1, 1], "nothing cascades from the users table"
        migrate.upgrade(db_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT language FROM users")).scalar() is None
    finally:
        engine.dispose()
