"""Migration 0900 on SQLite and PostgreSQL: down to 0800 and up again without losing a row (a batch
copy of a table on SQLite would cascade-delete its children), and calls agents took before it learn
their agent from the close's detail."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from warmline import migrate


def test_0900_down_and_up_fills_in_the_agent_of_earlier_calls(db_url: str) -> None:
    migrate.downgrade(db_url, "0800")
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
                    " created_at) VALUES (1, 1, '+8613800000001', '{}', 'done', 2, '{}', '2024-11-04 02:00:00+00')"
                )
            )
            for n, detail in ((1, '{"agent_name": "mei"}'), (2, "{}")):
                conn.execute(
                    text(
                        "INSERT INTO attempts (id, campaign_id, contact_id, attempt_no, node, state, created_at,"
                        " detail) VALUES (:id, 1, 1, :n, 'lab', 'ended', '2024-11-04 02:00:00+00', :detail)"
                    ),
                    {"id": f"a{n}", "n": n, "detail": detail},
                )
        migrate.upgrade(db_url, "0900")
        with engine.connect() as conn:
            agents: dict[str, str | None] = {
                row.id: row.agent for row in conn.execute(text("SELECT id, agent FROM attempts ORDER BY id"))
            }
            grace = conn.execute(text("SELECT callback_grace_minutes, dispositions FROM campaigns")).one()
        assert agents == {"a1": "mei", "a2": None}
        assert (grace[0], grace[1]) == (30, None)  # no dispositions stored: the defaults apply
        assert migrate.current_revision(db_url) == "0900"
        migrate.downgrade(db_url, "0800")  # and down again: nothing that cascades from a table is lost
        with engine.connect() as conn:
            counts = [
                conn.execute(text("SELECT count(*) FROM campaigns")).scalar(),
                conn.execute(text("SELECT count(*) FROM contacts")).scalar(),
                conn.execute(text("SELECT count(*) FROM attempts")).scalar(),
            ]
        assert counts == [1, 1, 2]
        migrate.upgrade(db_url)
    finally:
        engine.dispose()
