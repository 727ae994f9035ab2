"""Migration 2000 on SQLite and PostgreSQL: transfers and campaigns.transfer_numbers appear, take a
row, and go again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate


def test_2000_adds_and_removes_transfers(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO transfers (id, call_ref, from_agent, kind, mode, target, state, requested_at)"
                    " VALUES ('x1', 'att-1', 'mei', 'agent', 'attended', 'lin', 'requested',"
                    " '2026-12-02 21:00:00+00')"
                )
            )
        assert "transfer_numbers" in {c["name"] for c in inspect(engine).get_columns("campaigns")}
        migrate.downgrade(db_url, "1600")
        fresh = inspect(create_engine(db_url))
        assert "transfers" not in fresh.get_table_names()
        assert "transfer_numbers" not in {c["name"] for c in fresh.get_columns("campaigns")}
        migrate.upgrade(db_url, "2000")
        assert "transfers" in inspect(create_engine(db_url)).get_table_names()
    finally:
        engine.dispose()
