"""Migration 0940 on SQLite and PostgreSQL: campaigns gain their script, form and screen-pop columns
(null: none) without losing a contact, the cases table comes and goes, and down again keeps every
campaign, contact and attempt (a batch copy on SQLite would cascade-delete them)."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from warmline import migrate


def test_0940_adds_scripts_forms_and_cases_and_goes_back(db_url: str) -> None:
    migrate.downgrade(db_url, "0920")
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
                    " created_at) VALUES (1, 1, '+8613800000001', '{\"社区\": \"朝阳\"}', 'done', 1, '{}',"
                    " '2024-11-04 02:00:00+00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO attempts (id, campaign_id, contact_id, attempt_no, node, state, created_at,"
                    " detail) VALUES ('a1', 1, 1, 1, 'lab', 'ended', '2024-11-04 02:00:00+00', '{}')"
                )
            )
        migrate.upgrade(db_url, "0940")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT script, form, screen_pop FROM campaigns")).one()
            assert tuple(row) == (None, None, None), "no script, no form: the screen pop shows the script's"
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 0
        assert "ix_cases_status_follow_up" in {i["name"] for i in inspect(engine).get_indexes("cases")}
        migrate.downgrade(db_url, "0920")
        with engine.connect() as conn:
            counts = [
                conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608 - fixed names
                for table in ("campaigns", "contacts", "attempts")
            ]
        assert counts == [1, 1, 1]
        assert "cases" not in inspect(engine).get_table_names()
        migrate.upgrade(db_url)
    finally:
        engine.dispose()
