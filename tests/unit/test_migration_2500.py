"""Migration 2500 on SQLite and PostgreSQL: campaigns get `pacing` and `pacing_live`, and lose them
on the way down."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from warmline import migrate


def columns(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("campaigns")}
    finally:
        engine.dispose()


def test_2500_adds_the_pacing_columns(db_url: str) -> None:
    migrate.downgrade(db_url, "2410")
    assert not {"pacing", "pacing_live"} & columns(db_url)
    migrate.upgrade(db_url, "2500")
    assert {"pacing", "pacing_live"} <= columns(db_url)
    migrate.downgrade(db_url, "2410")
    assert not {"pacing", "pacing_live"} & columns(db_url)
    migrate.upgrade(db_url, "head")
