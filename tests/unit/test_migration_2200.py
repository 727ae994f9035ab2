"""Migration 2200 on SQLite and PostgreSQL: campaigns.retention and audit_notes appear; notes already
in the append-only audit log move out to audit_notes (the entry keeps a reference) and back on
downgrade; the log is append-only again afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DatabaseError

from warmline import migrate


def _detail(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def test_2200_moves_notes_out_of_the_audit_log_and_back(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        migrate.downgrade(db_url, "1600")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, target, detail) VALUES"
                    " ('2026-11-09 01:00:00+00', 'sup', 'welfare.alert.resolve', 'alert:3',"
                    " :d1), ('2026-11-09 01:00:00+00', 'sup', 'recording.play', 'x', :d2)"
                ),
                {"d1": json.dumps({"resolution": "王阿姨的女儿已上门"}), "d2": json.dumps({"range": "0-9"})},
            )
        migrate.upgrade(db_url, "2200")
        names = inspect(engine).get_table_names()
        assert "audit_notes" in names
        assert "retention" in {c["name"] for c in inspect(engine).get_columns("campaigns")}
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT action, detail FROM audit_log ORDER BY id")).all()
            notes = conn.execute(text("SELECT id, subject, text FROM audit_notes")).all()
        assert [(n.subject, n.text) for n in notes] == [("alert:3", "王阿姨的女儿已上门")]
        assert _detail(rows[0].detail) == {"resolution": f"note:{notes[0].id}"}
        assert _detail(rows[1].detail) == {"range": "0-9"}
        with pytest.raises(DatabaseError), engine.begin() as conn:  # append-only again
            conn.execute(text("UPDATE audit_log SET actor = 'x'"))
        migrate.downgrade(db_url, "1600")
        assert "audit_notes" not in inspect(create_engine(db_url)).get_table_names()
        with engine.begin() as conn:
            back = conn.execute(text("SELECT detail FROM audit_log ORDER BY id")).first()
        assert back is not None and _detail(back.detail) == {"resolution": "王阿姨的女儿已上门"}
        migrate.upgrade(db_url, "2200")
    finally:
        engine.dispose()
