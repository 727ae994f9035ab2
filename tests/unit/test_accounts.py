"""Accounts, tokens, the audit log and SIP endpoint rendering, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from agents.service import active_accounts, ensure_sip_account, md5_credential, render_endpoints
from core.audit import AuditEntry, audit, recent
from core.auth import service
from core.auth.models import Role
from core.db import Database, utcnow

PW = "correct horse battery"


def test_password_is_argon2_and_verifies(db: Database) -> None:
    with db.session() as s:
        user = service.create_user(s, "alice", Role.agent, PW, actor="test")
        assert user.password_hash.startswith("$argon2id$")
        assert PW not in user.password_hash
    with db.session() as s:
        assert service.authenticate(s, "alice", PW) is not None
        assert service.authenticate(s, "alice", PW + "x") is None
        assert service.authenticate(s, "nobody", PW) is None


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("Alice", PW, "invalid user name"),
        ("a", PW, "invalid user name"),
        ("bob", "short", "password too short"),
    ],
)
def test_bad_account_input_is_refused_with_reason(
    db: Database, name: str, password: str, message: str
) -> None:
    with db.session() as s, pytest.raises(service.AccountError, match=message):
        service.create_user(s, name, Role.qa, password, actor="test")


def test_duplicate_user_refused(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "carol", Role.manager, PW, actor="test")
    with db.session() as s, pytest.raises(service.AccountError, match="already exists"):
        service.create_user(s, "carol", Role.manager, PW, actor="test")


def test_tokens_expire_and_die_with_disabled_user(db: Database) -> None:
    with db.session() as s:
        user = service.create_user(s, "dave", Role.supervisor, PW, actor="test")
        token = service.issue_token(s, user, ttl=timedelta(hours=1))
        short = service.issue_token(s, user, ttl=timedelta(seconds=1))
    with db.session() as s:
        assert service.user_for_token(s, token) is not None
        assert service.user_for_token(s, short, now=utcnow() + timedelta(seconds=5)) is None
        assert service.user_for_token(s, "wl_forged") is None
        service.disable_user(s, "dave", actor="admin")
    with db.session() as s:
        assert service.user_for_token(s, token) is None
        assert service.authenticate(s, "dave", PW) is None


def test_token_is_stored_only_as_digest(db: Database) -> None:
    with db.session() as s:
        user = service.create_user(s, "erin", Role.qa, PW, actor="test")
        token = service.issue_token(s, user, ttl=None)
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert token not in stored and len(stored[0]) == 64


def test_audit_log_is_append_only(db: Database) -> None:
    with db.session() as s:
        audit(s, "admin", "test.action", "x", why="because")
    with db.session() as s:
        assert [e.action for e in recent(s)] == ["test.action"]
    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(sql))
    with db.session() as s:
        assert s.query(AuditEntry).one().actor == "admin"


def test_agent_gets_sip_account_others_do_not(db: Database) -> None:
    with db.session() as s:
        agent = service.create_user(s, "agent7", Role.agent, PW, actor="test")
        qa = service.create_user(s, "qa1", Role.qa, PW, actor="test")
        account = ensure_sip_account(s, agent, actor="test")
        assert account is not None and len(account.secret) >= 32
        assert ensure_sip_account(s, agent, actor="test") is account  # idempotent
        assert ensure_sip_account(s, qa, actor="test") is None
    with db.session() as s:
        text_ = render_endpoints(active_accounts(s))
        secret = active_accounts(s)[0].secret
    assert "[agent7]" in text_ and "context=agents" in text_
    assert secret not in text_, "the rendered config holds the digest, never the secret"
    assert md5_credential("agent7", secret) in text_
    with db.session() as s:
        service.disable_user(s, "agent7", actor="test")
    with db.session() as s:
        assert active_accounts(s) == []
