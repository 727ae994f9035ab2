"""Migration 2300 on SQLite and PostgreSQL: agents' endpoint ids stop being their login names (the
secret stays), sip_blocks appears, takes a row, and goes again on the way down."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate


def test_2300_renames_endpoints_and_adds_sip_blocks(db_url: str) -> None:
    migrate.downgrade(db_url, "1600")
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
                    "INSERT INTO sip_accounts (id, user_id, endpoint, secret, context, created_at)"
                    " VALUES (1, 1, 'mei', 's3cret', 'agents', '2026-11-24 02:00:00+00')"
                )
            )
        assert "sip_blocks" not in inspect(engine).get_table_names()
        migrate.upgrade(db_url, "2300")
        with engine.begin() as conn:
            endpoint, secret = conn.execute(text("SELECT endpoint, secret FROM sip_accounts")).one()
            assert endpoint != "mei" and endpoint.startswith("ag") and len(endpoint) == 14
            assert secret == "s3cret", "the agent's softphone keeps working after it fetches the new id"
            conn.execute(
                text(
                    "INSERT INTO sip_blocks (address, reason, failures, created_at, until)"
                    " VALUES ('203.0.113.9', '5 failed SIP sign-ins', 5, '2026-11-24 02:00:00+00', NULL)"
                )
            )
        migrate.downgrade(db_url, "1600")
        assert "sip_blocks" not in inspect(create_engine(db_url)).get_table_names()
        migrate.upgrade(db_url, "2300")
    finally:
        engine.dispose()
