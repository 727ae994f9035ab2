"""The dialer's ledger with a clock the test controls: claims, retries, caps, windows, opt-outs,
reconciliation. Every test runs on SQLite and PostgreSQL (the db fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import Database
from dialer import campaigns as svc
from dialer.engine.calls import endpoint_for, first_message
from dialer.engine.ledger import (
    Closing,
    active_attempts,
    claim,
    close,
    close_all,
    mark,
    mark_all,
    release_orphans,
)
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState, DncGlobal
from dialer.outcomes import CallFacts, Outcome
from dialer.reconcile import reconcile
from dialer.stats import campaign_figures
from tests.conftest import on_database

T0 = datetime(2024, 11, 4, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai


def make(db: Database, name: str = "c1", phones: tuple[str, ...] = ("+8613800000001",), **kw: Any) -> int:
    spec: dict[str, Any] = {
        "name": name,
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["09:00-12:00"]},
        "retry": {"busy": {"delay": "10m", "growth": 2, "max_attempts": 3}},
        "max_attempts": 4,
        "daily_cap": 3,
        "rolling_cap": 3,
        **kw,
    }
    with db.session() as session:
        campaign = svc.create_campaign(session, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        for p in phones:
            session.add(Contact(campaign_id=campaign.id, phone_e164=p, fields={"name": "x"}))
        return campaign.id


def do_claim(db: Database, name: str, at: datetime, limit: int = 10) -> list[str]:
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        return [c.attempt_id for c in claim(session, campaign, limit, at, node="lab")]


def do_close(db: Database, attempt_id: str, facts: CallFacts, at: datetime, **kw: Any) -> Any:
    with db.session() as session:
        return close(session, attempt_id, facts, at, **kw)


def contact(db: Database, phone: str = "+8613800000001", campaign: str = "c1") -> Contact:
    with db.session() as session:
        cid = svc.require_campaign(session, campaign).id
        found = session.scalar(select(Contact).where(Contact.phone_e164 == phone, Contact.campaign_id == cid))
        assert found is not None
        return found


def test_claim_writes_the_attempt_and_never_claims_twice(db: Database) -> None:
    make(db)
    [aid] = do_claim(db, "c1", T0)
    assert do_claim(db, "c1", T0) == []  # in progress: not claimable again
    with db.session() as session:
        attempt = session.get(Attempt, aid)
        assert attempt is not None and attempt.state is AttemptState.created and attempt.attempt_no == 1
        assert active_attempts(session) == 1
    assert contact(db).state is ContactState.in_progress


def test_busy_retries_by_the_rule_with_growth(db: Database) -> None:
    make(db)
    busy = CallFacts(answered=False, hangup_cause=17)
    [a1] = do_claim(db, "c1", T0)
    closed = do_close(db, a1, busy, T0 + timedelta(seconds=5))
    assert closed.outcome == "busy" and closed.next_due_at == T0 + timedelta(minutes=10, seconds=5)
    assert do_claim(db, "c1", T0 + timedelta(minutes=10)) == []  # not before its delay
    [a2] = do_claim(db, "c1", T0 + timedelta(minutes=10, seconds=5))
    closed = do_close(db, a2, busy, T0 + timedelta(minutes=11))
    assert closed.next_due_at == T0 + timedelta(minutes=31)  # 10 min x growth 2
    [a3] = do_claim(db, "c1", T0 + timedelta(minutes=31))
    closed = do_close(db, a3, busy, T0 + timedelta(minutes=32))
    assert closed.contact_state == "exhausted"  # busy max_attempts 3
    c = contact(db)
    assert c.attempts == 3 and c.outcome_counts == {"busy": 3} and c.last_outcome == "busy"
    with db.session() as session:
        rows = session.scalar(select(func.count()).select_from(Attempt))
        assert rows == 3


def test_closing_twice_counts_once(db: Database) -> None:
    make(db)
    [a1] = do_claim(db, "c1", T0)
    do_close(db, a1, CallFacts(answered=True, flow_outcome="confirmed"), T0)
    again = do_close(db, a1, CallFacts(answered=False, hangup_cause=17), T0)
    assert again.already
    c = contact(db)
    assert c.attempts == 1 and c.state is ContactState.done and c.last_outcome == "confirmed"


def test_retry_outside_the_window_waits_for_the_next_window(db: Database) -> None:
    make(db)
    [a1] = do_claim(db, "c1", T0 + timedelta(hours=1, minutes=55))  # 11:55 local
    closed = do_close(db, a1, CallFacts(answered=False, hangup_cause=17), T0 + timedelta(hours=1, minutes=56))
    # 12:06 is after the window: tomorrow 09:00 local (01:00 UTC)
    assert closed.next_due_at == datetime(2024, 11, 5, 1, 0, tzinfo=UTC)


def test_a_due_contact_outside_its_window_is_parked_not_called(db: Database) -> None:
    make(db)
    assert do_claim(db, "c1", T0 + timedelta(hours=5)) == []  # 15:00 local
    assert contact(db).next_due_at == datetime(2024, 11, 5, 1, 0, tzinfo=UTC)
    assert contact(db).state is ContactState.pending


def test_opt_out_goes_on_the_dnc_list_and_cancels_other_campaigns(db: Database) -> None:
    phone = "+8613800000007"
    make(db, "c1", (phone,))
    make(db, "c2", (phone,))
    [a1] = do_claim(db, "c1", T0)
    closed = do_close(db, a1, CallFacts(answered=True, amd_status="HUMAN", flow_outcome="opted_out"), T0)
    assert closed.outcome == "opted_out" and closed.contact_state == "done"
    with db.session() as session:
        assert session.scalar(select(DncGlobal).where(DncGlobal.phone_e164 == phone)) is not None
    assert contact(db, phone, "c2").state is ContactState.cancelled
    assert do_claim(db, "c2", T0) == []


def test_machine_with_message_left_is_final_else_retried(db: Database) -> None:
    make(db, phones=("+8613800000005", "+8613800000015"))
    a1, a2 = do_claim(db, "c1", T0)
    left = do_close(db, a1, CallFacts(answered=True, amd_status="MACHINE", message_left=True), T0)
    not_left = do_close(db, a2, CallFacts(answered=True, amd_status="MACHINE"), T0)
    assert (left.outcome, left.contact_state) == ("machine_message_left", "done")
    assert (not_left.outcome, not_left.contact_state) == ("machine", "pending")


def test_daily_cap_defers_to_the_next_day(db: Database) -> None:
    make(db, daily_cap=1, retry={"no_answer": {"delay": "1m", "max_attempts": 5}})
    [a1] = do_claim(db, "c1", T0)
    closed = do_close(db, a1, CallFacts(answered=False, hangup_cause=19), T0)
    assert closed.outcome == "no_answer"
    # The rule says 1 minute; the cap of one call a day says tomorrow's window.
    assert closed.next_due_at == datetime(2024, 11, 5, 1, 0, tzinfo=UTC)


def test_reconcile_closes_vanished_calls_and_reschedules_from_now(db: Database) -> None:
    make(
        db, phones=("+8613800000001", "+8613800000002"), retry={"failed": {"delay": "30m", "max_attempts": 3}}
    )
    a1, a2 = do_claim(db, "c1", T0)
    later = T0 + timedelta(minutes=7)
    with db.session() as session:
        report = reconcile(session, "lab", channels={a2}, now=later)
    assert report.closed == [a1] and report.alive == [a2]
    with db.session() as session:
        attempt = session.get(Attempt, a1)
        assert (
            attempt is not None
            and attempt.state is AttemptState.reconciled
            and attempt.outcome == "interrupted"
        )
        c = session.get(Contact, attempt.contact_id)
        assert c is not None and c.state is ContactState.pending and c.attempts == 1
        assert c.next_due_at == later + timedelta(minutes=30)


def test_orphaned_in_progress_contacts_go_back_to_pending(db: Database) -> None:
    make(db)
    with db.session() as session:
        c = session.scalar(select(Contact))
        assert c is not None
        c.state = ContactState.in_progress  # claimed, then the process died before the attempt row
    with db.session() as session:
        assert release_orphans(session) == 1
    assert contact(db).state is ContactState.pending


def test_figures(db: Database) -> None:
    make(db, phones=("+8613800000000", "+8613800000005", "+8613800000003"))
    a, b, c = do_claim(db, "c1", T0)
    do_close(db, a, CallFacts(answered=True, amd_status="HUMAN", flow_outcome="confirmed"), T0)
    do_close(db, b, CallFacts(answered=True, amd_status="MACHINE", message_left=True), T0)
    with db.session() as session:
        fig = campaign_figures(session, svc.require_campaign(session, "c1"), T0)
    assert fig["dialled"] == 3 and fig["answered"] == 2 and fig["human"] == 1 and fig["machine"] == 1
    assert fig["confirmed"] == 1 and fig["live"] == 1 and fig["remaining"] == 1 and fig["reached"] == 2
    assert c


def test_endpoint_and_machine_message() -> None:
    assert endpoint_for("Local/{number}@lab-pstn", "+8613800138000") == "Local/8613800138000@lab-pstn"
    assert endpoint_for("PJSIP/{number}@carrier", "+86 138") == "PJSIP/86138@carrier"
    from pathlib import Path

    from ivr.check import load_flow

    flow = load_flow(Path(__file__).resolve().parents[2] / "config" / "ivr" / "vaccination_reminder.yaml")
    node = first_message(flow)
    assert node is not None and node.id == "intro"


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_closes(db: Database, outcome: Outcome) -> None:
    make(db)
    [a1] = do_claim(db, "c1", T0)
    closed = do_close(db, a1, CallFacts(answered=True), T0, outcome=outcome)
    assert closed.outcome == outcome.value


def test_welfare_help_and_unreached_raise_alerts(db: Database) -> None:
    from dialer.welfare.models import Alert

    make(
        db,
        phones=("+8613800000000", "+8613800000002"),
        elder_welfare=True,
        max_attempts=1,
        windows={"daily": ["09:00-12:00"]},
    )
    helped, unreached = do_claim(db, "c1", T0)
    do_close(db, helped, CallFacts(answered=True, amd_status="HUMAN", flow_outcome="help"), T0)
    closed = do_close(db, unreached, CallFacts(answered=False, hangup_cause=19), T0)
    assert closed.contact_state == "exhausted" and closed.alerts == ["unreached"]
    with db.session() as session:
        kinds = sorted(a.kind for a in session.scalars(select(Alert)))
    assert kinds == ["help", "unreached"]


_PARITY_FACTS = [
    CallFacts(answered=False, hangup_cause=17),  # busy: retried by the rule
    CallFacts(answered=False, hangup_cause=19),  # no answer
    CallFacts(answered=True, hangup_cause=16, amd_status="HUMAN", flow_outcome="confirmed"),
    CallFacts(answered=True, hangup_cause=16, amd_status="MACHINE"),
    CallFacts(answered=True, hangup_cause=16, amd_status="HUMAN", flow_outcome="opted_out"),
    CallFacts(answered=True, hangup_cause=16),  # hung up early
]
_PARITY_PHONES = {
    name: tuple(f"+86138000{n}{i:02d}" for i in range(len(_PARITY_FACTS)))
    for n, name in enumerate(("one", "all"))
}  # distinct numbers: an opt-out cancels the number in every campaign


def _closed_rows(db: Database, name: str) -> list[tuple[Any, ...]]:
    """What closing wrote to the campaign's attempts and contacts, by contact (no ids or numbers)."""
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        stmt = (
            select(Contact, Attempt)
            .join(Attempt, Attempt.contact_id == Contact.id)
            .where(Contact.campaign_id == cid)
            .order_by(Contact.phone_e164, Attempt.attempt_no)
        )
        return [
            (
                _PARITY_PHONES[name].index(c.phone_e164), c.state, c.attempts, c.outcome_counts,
                c.last_outcome, c.next_due_at,
                a.state, a.ended_at, a.answered_at, a.hangup_cause, a.amd_status, a.flow_outcome,
                a.outcome, a.digits, a.detail, a.agent,
            )
            for c, a in session.execute(stmt).tuples()
        ]  # fmt: skip


def test_close_all_writes_what_close_writes_one_by_one(db: Database) -> None:
    """The batch's Core path (and its ORM fall-backs: an opt-out) against `close`, outcome by
    outcome, twice (the second close of each changes nothing), on a contact's first and second
    attempt (the retry's time reads its earlier attempts)."""
    for name in ("one", "all"):
        make(db, name, _PARITY_PHONES[name])
    answered = T0 + timedelta(seconds=5)
    for round_no, at in enumerate((T0, T0 + timedelta(days=1))):
        with db.session() as session:
            for name in ("one", "all"):
                found = svc.require_campaign(session, name)
                claimed = {c.phone_e164: c.attempt_id for c in claim(session, found, 10, at, node="lab")}
                closings = [
                    Closing(
                        claimed[p], facts, at + timedelta(seconds=40),
                        digits="1" if facts.flow_outcome else None,
                        detail={"ended": "callee", "agent_name": "mei"} if facts.answered else None,
                        answered_at=answered + timedelta(days=round_no) if facts.answered else None,
                    )
                    for p, facts in zip(_PARITY_PHONES[name], _PARITY_FACTS, strict=True) if p in claimed
                ]  # fmt: skip
                for _ in range(2):
                    if name == "one":
                        results = [_close_one_by_one(session, c) for c in closings]
                    else:
                        results = close_all(session, closings)
                    assert all(r is not None for r in results)
        assert _closed_rows(db, "one") == _closed_rows(db, "all")
    assert len(_closed_rows(db, "all")) > len(_PARITY_FACTS), "the retried contacts were closed twice"


# (state the attempt is in, its answered_at, the note): every case `mark` decides.
_MARK_CASES = (
    (AttemptState.created, None, AttemptState.dialing),
    (AttemptState.created, None, AttemptState.answered),
    (AttemptState.dialing, None, AttemptState.answered),
    (AttemptState.dialing, None, AttemptState.dialing),
    (AttemptState.answered, None, AttemptState.dialing),  # never backwards
    (AttemptState.answered, T0, AttemptState.answered),  # the first answer's time is kept
    (AttemptState.dialing, T0, AttemptState.answered),  # kept too (a close wrote it)
    (AttemptState.ended, None, AttemptState.answered),  # never a closed attempt
    (AttemptState.reconciled, None, AttemptState.dialing),
)


def test_mark_all_writes_what_mark_writes_one_by_one(db: Database) -> None:
    """A pass's progress notes, two Core statements for the batch (issue 13, Round 7), against
    `mark` attempt by attempt: the same state and answered_at for every case, on both databases."""
    phones = {
        name: tuple(f"+86138{k}0000{i:02d}" for i in range(len(_MARK_CASES)))
        for k, name in ((1, "one"), (2, "all"))
    }
    noted = T0 + timedelta(seconds=7)
    notes: dict[str, dict[str, tuple[AttemptState, datetime]]] = {"one": {}, "all": {}}
    for name in ("one", "all"):
        make(db, name, phones[name])
    with db.session() as session:
        for name in ("one", "all"):
            claimed = claim(session, svc.require_campaign(session, name), 20, T0, node="lab")
            by_phone = {c.phone_e164: c.attempt_id for c in claimed}
            for phone, (state, answered_at, note) in zip(phones[name], _MARK_CASES, strict=True):
                attempt = session.get(Attempt, by_phone[phone])
                assert attempt is not None
                attempt.state, attempt.answered_at = state, answered_at
                notes[name][attempt.id] = (note, noted)
    with db.session() as session:
        for attempt_id, (note, at) in notes["one"].items():
            mark(session, attempt_id, note, at)
        mark_all(session, notes["all"])

    def rows(name: str) -> list[tuple[Any, Any]]:
        with db.session() as session:
            got = {a.id: (a.state, a.answered_at) for a in session.scalars(select(Attempt))}
        return [got[attempt_id] for attempt_id in notes[name]]

    assert rows("one") == rows("all")
    assert [state for state, _ in rows("all")] == [
        AttemptState.dialing, AttemptState.answered, AttemptState.answered, AttemptState.dialing,
        AttemptState.answered, AttemptState.answered, AttemptState.answered, AttemptState.ended,
        AttemptState.reconciled,
    ]  # fmt: skip
    assert [at for _, at in rows("all")][1:3] == [noted, noted] and rows("all")[5][1] == T0


def _close_one_by_one(session: Any, c: Closing) -> Any:
    return close(
        session, c.attempt_id, c.facts, c.now,
        outcome=c.outcome, digits=c.digits, detail=c.detail, escalate=c.escalate, answered_at=c.answered_at,
    )  # fmt: skip


@on_database("postgresql")
def test_two_claims_at_once_never_take_one_contact(db: Database) -> None:
    """PostgreSQL: a claim locks its candidates (FOR UPDATE SKIP LOCKED); a second worker's claim
    in a transaction open meanwhile skips them and takes others."""
    make(db, phones=tuple(f"+86138000001{i:02d}" for i in range(20)))
    with db.session() as a, db.session() as b:
        first = claim(a, svc.require_campaign(a, "c1"), 3, T0, node="lab")
        second = claim(b, svc.require_campaign(b, "c1"), 10, T0, node="other")
    assert len(first) == 3 and len(second) == 9, "the first claim's 11 candidates stay locked to it"
    assert not {c.contact_id for c in first} & {c.contact_id for c in second}
    with db.session() as session:
        rows = session.execute(select(Attempt.contact_id, Attempt.attempt_no)).all()
        states = list(session.scalars(select(Contact.state)))
    assert len(rows) == 12 and len({cid for cid, _ in rows}) == 12 and {n for _, n in rows} == {1}
    assert states.count(ContactState.in_progress) == 12
