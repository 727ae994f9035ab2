"""Accounts, tokens, the audit log and SIP endpoint rendering, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from agents.service import active_accounts, ensure_sip_account, md5_credential, render_endpoints
from core.audit import AuditEntry, audit, recent
from core.auth import service
from core.auth.models import Role
from core.db import Database, utcnow
from core.settings import get_settings
from tests.utils.cli import CliRunner
from warmline.cli import app

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


def test_the_default_hash_is_argon2id_64_mib_3_passes_and_a_cheaper_profile_is_checked() -> None:
    default = service.password_hasher({})
    assert (default.memory_cost, default.time_cost) == (65536, 3)
    owasp = service.password_hasher({"WARMLINE_ARGON2_MEMORY_KIB": "19456", "WARMLINE_ARGON2_TIME_COST": "2"})
    assert owasp.hash(PW).startswith("$argon2id$v=19$m=19456,t=2,")
    assert default.check_needs_rehash(owasp.hash(PW))  # a stronger profile upgrades at sign-in
    with pytest.raises(ValueError, match="WARMLINE_ARGON2_MEMORY_KIB=1024: must be between 7168"):
        service.password_hasher({"WARMLINE_ARGON2_MEMORY_KIB": "1024"})
    with pytest.raises(ValueError, match="WARMLINE_ARGON2_TIME_COST='three': not a whole number"):
        service.password_hasher({"WARMLINE_ARGON2_TIME_COST": "three"})


@pytest.mark.parametrize(
    ("name", "password", "code", "message"),
    [
        ("Alice", PW, "invalid_name", "用户名“Alice”无效"),
        ("a", PW, "invalid_name", "用户名“a”无效"),
        ("bob", "short", "password_too_short", "密码太短：至少需要 10 个字符"),
    ],
)
def test_bad_account_input_is_refused_with_reason(
    db: Database, name: str, password: str, code: str, message: str
) -> None:
    # The reason in zh-CN, everyone's default; the code for programs.
    with db.session() as s, pytest.raises(service.AccountError, match=message) as refused:
        service.create_user(s, name, Role.qa, password, actor="test")
    assert refused.value.code == code


def test_duplicate_user_refused(db: Database, english: None) -> None:
    with db.session() as s:
        service.create_user(s, "carol", Role.manager, PW, actor="test")
    with db.session() as s, pytest.raises(service.AccountError, match="user 'carol' already exists"):
        service.create_user(s, "carol", Role.manager, PW, actor="test")


def test_language_choice_is_stored_and_audited(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "erin", Role.agent, PW, actor="test", language="en-GB")
    with db.session() as s:
        assert service.require_user(s, "erin").language == "en"
        service.set_language(s, "erin", "zh", actor="root")
    with db.session() as s:
        assert service.require_user(s, "erin").language == "zh-CN"
        service.set_language(s, "erin", "auto", actor="erin")
        service.set_language(s, "erin", None, actor="erin")  # no change: not audited again
    with db.session() as s:
        assert service.require_user(s, "erin").language is None
        changes = [
            (e.actor, e.detail["before"], e.detail["after"])
            for e in s.query(AuditEntry).filter(AuditEntry.action == "user.language").order_by(AuditEntry.id)
        ]
    assert changes == [("root", "en", "zh-CN"), ("erin", "zh-CN", None)]
    with db.session() as s, pytest.raises(service.AccountError) as refused:
        service.set_language(s, "erin", "fr", actor="erin")
    assert refused.value.code == "unsupported_language" and "zh-CN, en" in refused.value.message


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
        secret, endpoint = active_accounts(s)[0].secret, active_accounts(s)[0].endpoint
    assert endpoint != "agent7" and endpoint.startswith("ag"), "the endpoint id is not the login name"
    assert f"[{endpoint}]" in text_ and "context=agents" in text_ and "agent7" not in text_
    assert "transport=transport-tls" in text_ and "media_encryption=sdes" in text_
    assert "media_encryption_optimistic=no" in text_, "SRTP is required, not merely offered"
    assert "rtp_timeout=15" in text_, "a dead phone's call (a nailed line among them) ends"
    assert secret not in text_, "the rendered config holds the digest, never the secret"
    assert md5_credential(endpoint, secret) in text_
    with db.session() as s:
        service.disable_user(s, "agent7", actor="test")
    with db.session() as s:
        assert active_accounts(s) == []


def test_users_cli_sets_a_language_and_speaks_the_admins(
    db_url: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`warmline users add --language` and `users set --language` store the choice; the command line
    itself speaks WARMLINE_LANG, else LANG, else zh-CN."""
    monkeypatch.setenv("WARMLINE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WARMLINE_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("WARMLINE_LANG", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        added = runner.invoke(
            app,
            ["users", "add", "qiu", "--role", "qa", "--password-stdin", "--language", "en"],
            input=PW + "\n",
        )
        assert added.exit_code == 0, added.output
        assert added.stdout.strip() == "已添加 qiu（质检员）"
        listed = runner.invoke(app, ["users", "list", "--json"])
        assert json.loads(listed.stdout)[0]["language"] == "en"
        monkeypatch.setenv("LANG", "en_US.UTF-8")
        chose = runner.invoke(app, ["users", "set", "qiu", "--language", "zh-CN"])
        assert chose.exit_code == 0 and chose.stdout.strip() == "qiu now reads and hears 简体中文"
        monkeypatch.setenv("WARMLINE_LANG", "zh-CN")
        wrong = runner.invoke(app, ["users", "set", "qiu", "--language", "fr"])
        assert wrong.exit_code == 2 and "错误：语言“fr”不受支持" in wrong.stderr
        missing = runner.invoke(app, ["users", "set", "ghost", "--language", "en"])
        assert missing.exit_code == 2 and "没有名为“ghost”的用户" in missing.stderr
    finally:
        get_settings.cache_clear()
    with db.session() as s:
        assert service.require_user(s, "qiu").language == "zh-CN"
