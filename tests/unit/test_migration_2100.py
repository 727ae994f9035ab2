"""Migration 2100 on SQLite and PostgreSQL: the sign-in throttle table and the sessions' columns
appear (existing tokens keep working), and go again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate


def test_2100_adds_and_removes_the_throttle_and_session_columns(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        migrate.downgrade(db_url, "1600")
        assert "sign_in_throttle" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (name, role, password_hash, disabled, created_at)"
                              " VALUES ('mei', 'agent', 'x', false, '2026-12-01 00:00:00+00')"))  # fmt: skip
            conn.execute(text("INSERT INTO api_tokens (user_id, token_hash, label, created_at, revoked)"
                              " SELECT id, 'h', 'console', '2026-12-01 00:00:00+00', false FROM users"))  # fmt: skip
        migrate.upgrade(db_url, "2100")
        fresh = inspect(create_engine(db_url))
        assert "sign_in_throttle" in fresh.get_table_names()
        columns = {c["name"] for c in fresh.get_columns("api_tokens")}
        assert {"last_used_at", "csrf_hash"} <= columns
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT token_hash, last_used_at, csrf_hash FROM api_tokens")).all()
        assert [tuple(r) for r in kept] == [("h", None, None)]
    finally:
        engine.dispose()
