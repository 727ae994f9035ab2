"""Migration 2480 on SQLite and PostgreSQL: campaigns.survey and survey_comment_seconds and
call_surveys.comment_recording appear (existing campaigns ask for no survey) and go on the way down."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, inspect

from warmline import migrate


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_2480_adds_the_campaign_survey_and_takes_it_away(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        migrate.downgrade(db_url, "2470")
        engine.dispose()
        assert "survey" not in _columns(engine, "campaigns")
        migrate.upgrade(db_url, "2480")
        engine.dispose()
        assert {"survey", "survey_comment_seconds"} <= _columns(engine, "campaigns")
        assert "comment_recording" in _columns(engine, "call_surveys")
        migrate.downgrade(db_url, "2470")
        engine.dispose()
        assert "survey" not in _columns(engine, "campaigns")
        assert "comment_recording" not in _columns(engine, "call_surveys")
        migrate.upgrade(db_url, "head")
    finally:
        engine.dispose()
