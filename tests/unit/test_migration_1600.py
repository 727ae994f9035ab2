"""Migration 1600 on SQLite and PostgreSQL: inbound_calls appears, takes a row, and goes again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate


def test_1600_adds_and_removes_inbound_calls(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inbound_calls (channel_id, number, line, arrived_at, queued, outcome,"
                    " wait_s, talk_s) VALUES ('c1', '12345', 'community-hotline', '2026-11-09 01:00:00+00',"
                    " true, 'agent', 3.0, 180.0)"
                )
            )
        migrate.downgrade(db_url, "1000")
        assert "inbound_calls" not in inspect(engine).get_table_names()
        migrate.upgrade(db_url, "1600")
        assert "inbound_calls" in inspect(create_engine(db_url)).get_table_names()
    finally:
        engine.dispose()
