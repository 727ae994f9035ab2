"""Migration 0920 on SQLite and PostgreSQL: campaigns from before it are broadcast, allow no typed
numbers and ask agents for nothing; agents may not dial typed numbers; down to 0910 and up again
loses no row (no table is copied: a copy on SQLite would cascade-delete its children)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from warmline import migrate


def test_0920_defaults_and_down_and_up(db_url: str) -> None:
    migrate.downgrade(db_url, "0910")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, name, kind, status, elder_welfare, timezone, windows, skip_dates,"
                    " retry, max_attempts, daily_cap, rolling_cap, priority, amd, max_channels,"
                    " calls_per_second, allowed_countries, created_at, created_by, updated_at)"
                    " VALUES (1, 'c1', 'agent', 'running', false, 'Asia/Shanghai', '{}', '[]', '{}', 6, 3, 3, 5,"
                    " 'retry', 10, 2, '[\"CN\"]', '2024-11-04 02:00:00+00', 't', '2024-11-04 02:00:00+00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO contacts (id, campaign_id, phone_e164, fields, state, attempts, outcome_counts,"
                    " created_at) VALUES (1, 1, '+8613800000001', '{}', 'pending', 0, '{}', '2024-11-04 02:00:00+00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO attempts (id, campaign_id, contact_id, attempt_no, node, state, created_at,"
                    " detail) VALUES ('a1', 1, 1, 1, 'lab', 'ended', '2024-11-04 02:00:00+00', '{}')"
                )
            )
        migrate.upgrade(db_url, "0920")
        with engine.connect() as conn:
            campaign = conn.execute(text("SELECT mode, manual_dial, skill, language FROM campaigns")).one()
            reserved = conn.execute(text("SELECT reserved_by, reserved_until FROM contacts")).one()
            skips = conn.execute(text("SELECT count(*) FROM preview_skips")).scalar()
        assert (campaign[0], bool(campaign[1]), campaign[2], campaign[3]) == ("broadcast", False, None, None)
        assert tuple(reserved) == (None, None) and skips == 0
        migrate.downgrade(db_url, "0910")
        with engine.connect() as conn:
            counts = [
                conn.execute(text("SELECT count(*) FROM campaigns")).scalar(),
                conn.execute(text("SELECT count(*) FROM contacts")).scalar(),
                conn.execute(text("SELECT count(*) FROM attempts")).scalar(),
            ]
        assert counts == [1, 1, 1]
        migrate.upgrade(db_url, "0920")
        assert migrate.current_revision(db_url) == "0920"
    finally:
        engine.dispose()
