"""Migration 2450 on SQLite and PostgreSQL: shifts and shift_weeks appear, take rows (one hour per
agent), and go again on the way down."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from warmline import migrate

ROW = (
    "INSERT INTO shifts (agent, line, starts_at, ends_at, week, picked_by, created_at) VALUES"
    " ('mei', :line, '2030-03-04 01:00:00+00', '2030-03-04 02:00:00+00', '2030-W10', 'mei',"
    " '2030-03-01 01:00:00+00')"
)


def test_2450_adds_shifts_and_shift_weeks(db_url: str) -> None:
    migrate.downgrade(db_url, "2500")
    engine = create_engine(db_url)
    try:
        assert "shifts" not in inspect(engine).get_table_names()
        migrate.upgrade(db_url, "2450")
        with engine.begin() as conn:
            conn.execute(text(ROW), {"line": "community-hotline"})
            conn.execute(
                text(
                    "INSERT INTO shift_weeks (line, week, published_by, published_at)"
                    " VALUES ('community-hotline', '2030-W10', 'boss', '2030-03-01 01:00:00+00')"
                )
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:  # one line per agent and hour
            conn.execute(text(ROW), {"line": "elder-line"})
        migrate.downgrade(db_url, "2500")
        assert not {"shifts", "shift_weeks", "call_surveys"} & set(
            inspect(create_engine(db_url)).get_table_names()
        )
        migrate.upgrade(db_url, "2450")
    finally:
        engine.dispose()
