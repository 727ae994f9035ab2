"""The SIP guard and endpoint hardening without Asterisk: parsing its security log, counting on an
injected clock, following a growing file, the block list on SQLite and PostgreSQL, the ACL file,
display names that cannot break pjsip_agents.conf, and `warmline sip ...`.
(The lab test tests/integration/test_sip_tls_lab.py runs the same guard against real Asterisk.)"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.service import active_accounts, ensure_sip_account, render_endpoints, sip_display_name
from agents.sip_guard import (
    BLOCKS_FILE,
    FailureCounter,
    LogFollower,
    SipGuard,
    SipGuardError,
    active_blocks,
    block,
    parse_event,
    render_blocks,
    unblock,
)
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import AsteriskNode, Settings
from tests.utils import until
from tests.utils.cli import CliRunner, run
from warmline.cli import app

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WRONG = (
    '[2026-12-02 21:38:14.498] SECURITY[2657] res_security_log.c: SecurityEvent="ChallengeResponseFailed",'
    'EventTV="2026-12-02T21:38:14.498+0000",Severity="Error",Service="PJSIP",EventVersion="1",'
    'AccountID="ag0b961cfd30a4",SessionID="f171",LocalAddress="IPV4/TLS/127.0.0.1/16061",'
    'RemoteAddress="IPV4/TLS/{ip}/34163",Challenge="1796247494/2429",Response="x",ExpectedResponse=""'
)
CHALLENGE = WRONG.replace("ChallengeResponseFailed", "ChallengeSent")


class Clock:
    """The guard's clock, moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def test_security_log_lines_are_parsed() -> None:
    event = parse_event(WRONG.format(ip="203.0.113.9"))
    assert event is not None
    assert (event.kind, event.address, event.account, event.service) == (
        "ChallengeResponseFailed",
        "203.0.113.9",
        "ag0b961cfd30a4",
        "PJSIP",
    )
    assert parse_event("[2026-12-02 21:38:14.498] NOTICE[1] chan_pjsip.c: something else") is None


def test_failures_are_counted_in_a_sliding_window() -> None:
    counter = FailureCounter(5, timedelta(minutes=5))
    counts = [counter.failed("203.0.113.9", T0 + timedelta(minutes=i)) for i in range(4)]
    assert counts == [1, 2, 3, 4] and not counter.over(4)
    assert counter.failed("198.51.100.7", T0) == 1, "per address"
    # Ten minutes later the first tries have slid out of the window.
    assert counter.failed("203.0.113.9", T0 + timedelta(minutes=6)) == 3
    assert counter.over(counter.failed("203.0.113.9", T0 + timedelta(minutes=6)) + 1)
    counter.forget("203.0.113.9")
    assert counter.failed("203.0.113.9", T0 + timedelta(minutes=7)) == 1


def test_log_follower_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "security.log"
    log.write_text("old line\n")
    follower = LogFollower(log)
    assert follower.read() == [], "starts at the end: old events are not counted again"
    with log.open("a") as fh:
        fh.write("one\ntw")
    assert follower.read() == ["one"]
    with log.open("a") as fh:
        fh.write("o\n")
    assert follower.read() == ["two"]
    log.write_text("rotated\n")  # a new, shorter file
    assert follower.read() == ["rotated"]
    assert LogFollower(tmp_path / "missing.log").read() == []


def test_display_names_cannot_break_the_endpoints_file(db: Database) -> None:
    assert sip_display_name('王梅\n[evil]\ntype=endpoint"') == "王梅 evil typeendpoint"
    assert sip_display_name("a\u2028b\u202ec\t d") == "a b c d", "line separators, bidi, tabs"
    assert sip_display_name("\n\r") == ""
    with db.session() as s:
        user = service.create_user(
            s, "mei", Role.agent, "correct horse battery", actor="test", display_name="王梅\n[x]\nallow=all"
        )
        ensure_sip_account(s, user, actor="test")
    with db.session() as s:
        text = render_endpoints(active_accounts(s))
    lines = text.splitlines()
    assert "[x]" not in lines and "allow=all" not in lines
    assert sum(line.startswith("callerid=") for line in lines) == 1
    assert 'callerid="王梅 x allowall" <ag' in text


def test_blocks_are_kept_audited_and_rendered(db: Database) -> None:
    with db.session() as s:
        block(
            s, "203.0.113.9", reason="5 failed", failures=5, until=T0 + timedelta(hours=1), actor="sip-guard"
        )
        block(s, "2001:db8::7", reason="by hand", failures=0, until=None, actor="cli")
        with pytest.raises(SipGuardError):
            block(s, "not-an-ip", reason="x", failures=0, until=None, actor="cli")
    with db.session() as s:
        assert [b.address for b in active_blocks(s, T0)] == ["203.0.113.9", "2001:db8::7"]
        assert [b.address for b in active_blocks(s, T0 + timedelta(hours=2))] == ["2001:db8::7"], "expired"
        text = render_blocks([b.address for b in active_blocks(s, T0)])
        unblock(s, "2001:db8::7", actor="cli")
        with pytest.raises(SipGuardError, match="没有被封禁"):
            unblock(s, "198.51.100.1", actor="cli")
    assert "type = acl" in text and "deny = 203.0.113.9/32" in text and "deny = 2001:db8::7/128" in text
    assert "permit" not in text, "everyone else is let through by default"
    assert "type = acl" not in render_blocks([]), "no ACL at all when nothing is blocked"
    with db.session() as s:
        actions = [e.action for e in s.query(AuditEntry).order_by(AuditEntry.id)]
    assert actions == ["sip.block", "sip.block", "sip.unblock"]


def test_guard_blocks_the_fifth_failure_and_never_loopback(db: Database, db_url: str, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    log = tmp_path / "security.log"
    log.write_text("")
    node = AsteriskNode(ari_url="http://127.0.0.1:9/ari", ari_password="x", config_dir=etc, security_log=log)
    settings = Settings(var_dir=tmp_path, database_url=db_url, asterisk_nodes=[node], _env_file=None)
    clock = Clock(T0)
    guard = SipGuard(settings, db, now=clock.now)

    async def scenario() -> list[list[str]]:
        seen = []
        for _ in range(6):
            seen.append(
                await guard.feed([WRONG.format(ip="203.0.113.9"), CHALLENGE.format(ip="203.0.113.9")])
            )
            clock.advance(10)
        seen.append(await guard.feed([WRONG.format(ip="127.0.0.1")] * 10))
        return seen

    seen = asyncio.run(scenario())
    assert seen == [[], [], [], [], ["203.0.113.9"], [], []], "blocked at the 5th failure, once"
    assert "deny = 203.0.113.9/32" in (etc / BLOCKS_FILE).read_text()
    assert oct((etc / BLOCKS_FILE).stat().st_mode & 0o777) == "0o640", "Asterisk's group reads it"
    with db.session() as s:
        (row,) = active_blocks(s, clock.now())
        assert row.failures == 5 and row.until == T0 + timedelta(seconds=40) + timedelta(minutes=60)
    # An hour later the block expires by itself.
    clock.advance(3600)
    asyncio.run(guard.refresh())
    assert "203.0.113.9" not in (etc / BLOCKS_FILE).read_text() and guard.blocked == set()


def test_sip_cli_lists_blocks_and_unblocks(cli: CliRunner, english: None) -> None:
    assert run(cli, "sip", "blocks").strip() == "no address is blocked"
    assert run(cli, "sip", "block", "203.0.113.9", "--minutes", "30").strip() == "blocked 203.0.113.9"
    listed = json.loads(run(cli, "sip", "blocks", "--json"))
    assert [(b["address"], b["reason"]) for b in listed] == [("203.0.113.9", "blocked by hand")]
    assert "203.0.113.9: blocked by hand; since" in run(cli, "sip", "blocks")
    assert "is not blocked" in cli.invoke(app, ["sip", "unblock", "198.51.100.1"]).stderr
    assert run(cli, "sip", "unblock", "203.0.113.9").strip() == "unblocked 203.0.113.9"
    assert json.loads(run(cli, "sip", "blocks", "--json")) == []


def test_guard_worker_follows_the_log_it_is_given(db: Database, db_url: str, tmp_path: Path) -> None:
    """`warmline up`'s worker: the guard follows the node's security log from where it was."""
    etc, log = tmp_path / "etc", tmp_path / "security.log"
    log.write_text(WRONG.format(ip="203.0.113.9") + "\n")  # before the guard started: not counted
    node = AsteriskNode(ari_url="http://127.0.0.1:9/ari", ari_password="x", config_dir=etc, security_log=log)
    settings = Settings(var_dir=tmp_path, database_url=db_url, asterisk_nodes=[node], _env_file=None)
    settings.sip_guard_max_failures = 2
    guard = SipGuard(settings, db)

    async def scenario() -> str:
        task = asyncio.create_task(guard.run(poll=0.01))
        try:
            await until(lambda: (etc / BLOCKS_FILE).exists(), timeout=10, what="the guard started")
            with log.open("a") as fh:
                fh.write((WRONG.format(ip="198.51.100.4") + "\n") * 2)
            await until(lambda: "198.51.100.4" in (etc / BLOCKS_FILE).read_text(), timeout=10, what="blocked")
            return (etc / BLOCKS_FILE).read_text()
        finally:
            task.cancel()

    text = asyncio.run(scenario())
    assert "deny = 198.51.100.4/32" in text and "203.0.113.9" not in text
