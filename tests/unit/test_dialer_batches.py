"""The dialer's per-pass batches (issue 13, the dialer's CPU per call), on SQLite and PostgreSQL.

What one transaction per pass must keep of one per call: a claim's do-not-call check of every
candidate in one query; the chosen contacts taken by one guarded UPDATE that leaves a contact
another worker took; a pass's outcomes closed together, each read once, an entry the database
refuses rejected alone while the others are written; a campaign paced by its calls per second
alone claims half a second's worth of calls at once.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event, select, update

from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer import dnc
from dialer.engine.ledger import _take_all, claim
from dialer.engine.runtime import CampaignState, DialerWorker, _claim_batch
from dialer.models import Attempt, AttemptState, Campaign, CampaignStatus, Contact, ContactState
from dialer.pacing import TokenBucket
from tests.unit.test_dialer_faults import NOW, _entry, _worker
from tests.unit.test_reconcile_fake_ari import CAMPAIGN, make_campaign
from tests.utils.campaigns import make_running_campaign


def _statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: seen.append(sql))
    return seen


def test_a_claim_checks_every_candidate_against_the_lists_in_one_query(db: Database) -> None:
    make_campaign(db, "0123")
    with db.session() as session:
        campaign = svc.require_campaign(session, CAMPAIGN)
        phones = sorted(session.scalars(select(Contact.phone_e164)))
        dnc.add_numbers(session, [phones[0]], campaign=None, source="t", reason=None, actor="t")
        dnc.add_numbers(session, [phones[2]], campaign=campaign, source="t", reason=None, actor="t")
    with db.session() as session:
        campaign = svc.require_campaign(session, CAMPAIGN)
        assert dnc.blocked_numbers(session, campaign.id, phones) == {phones[0], phones[2]}
        assert dnc.blocked_numbers(session, campaign.id, []) == set()
        seen = _statements(db)
        claimed = claim(session, campaign, 4, NOW, node="fake")
    assert sorted(c.phone_e164 for c in claimed) == [phones[1], phones[3]]
    dnc_reads = [s for s in seen if "dnc_" in s.lower() and s.lstrip().upper().startswith("SELECT")]
    assert len(dnc_reads) == 1, dnc_reads
    with db.session() as session:
        states = {p: s for p, s in session.execute(select(Contact.phone_e164, Contact.state))}
    assert states[phones[0]] is ContactState.cancelled and states[phones[2]] is ContactState.cancelled


def test_the_guarded_take_leaves_a_contact_another_worker_took(db: Database) -> None:
    make_campaign(db, "012")
    with db.session() as session:
        ids = sorted(session.scalars(select(Contact.id)))
    with db.session() as other:  # another worker was faster with the second one
        other.execute(update(Contact).where(Contact.id == ids[1]).values(state=ContactState.in_progress))
    with db.session() as session:
        assert _take_all(session, ids) == {ids[0], ids[2]}
        assert _take_all(session, ids) == set(), "taken once"


def test_a_pass_closes_its_outcomes_together_and_rejects_only_the_refused(
    settings: Settings, db: Database
) -> None:
    make_campaign(db, "0" * 5)
    with db.session() as session:
        campaign = svc.require_campaign(session, CAMPAIGN)
        attempt_ids = [c.attempt_id for c in claim(session, campaign, 5, NOW, node="fake")]
    w = _worker(settings, db)
    entries: list[dict[str, Any]] = [_entry(a) for a in attempt_ids[:4]]
    for entry in entries:
        w.journal.append(entry)
    seen = _statements(db)
    assert w._apply_batch(entries) == ["confirmed"] * 4
    attempt_reads = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "FROM attempts" in s]
    assert len(attempt_reads) <= 2, f"each attempt read once for the batch, not once each: {attempt_reads}"
    assert not w.journal.pending_ids()
    # One entry the database refuses: the others are still written, that one is rejected.
    bad = _entry("no-such-attempt")
    last = _entry(attempt_ids[4])
    w.journal.append(bad)
    w.journal.append(last)
    assert w._apply_batch([bad, last]) == [None, "confirmed"]
    reasons = [json.loads(line)["reason"] for line in w.journal.rejected_path.read_text().splitlines()]
    assert reasons == ["Rejected: attempt no-such-attempt is not in the database"]
    assert not w.journal.pending_ids()
    with db.session() as session:
        states = set(session.scalars(select(Attempt.state)))
        contacts = list(session.scalars(select(Contact)))
    assert states == {AttemptState.ended}
    assert all(c.attempts == 1 and c.outcome_counts == {"confirmed": 1} for c in contacts)


def test_a_campaign_paced_by_its_rate_alone_claims_half_a_second_of_calls_at_once() -> None:
    def state(rate: float) -> CampaignState:
        return CampaignState(spec=None, plan_key=(), flow=None, bucket=TokenBucket(rate))  # type: ignore[arg-type]

    assert [_claim_batch(state(r)) for r in (0.5, 1, 2, 5, 10, 20)] == [1, 1, 1, 2, 5, 10]


def test_a_worker_for_some_campaigns_reads_only_their_rows(settings: Settings, db: Database) -> None:
    """`campaigns=` (the demo's, the benches'): the pass's read names them in its query, so the
    other running campaigns' rows are not loaded at all (issue 13, Round 7)."""
    make_campaign(db, "0")
    make_running_campaign(db, "other", "1")
    seen = _statements(db)
    w = DialerWorker(settings, db, campaigns={CAMPAIGN}, now=lambda: NOW)
    running, _asked = w._running_campaigns()
    assert [c.name for c, _state in running] == [CAMPAIGN]
    reads = [s for s in seen if "FROM campaigns" in s]
    assert len(reads) == 2 and "campaigns.name IN" in reads[0], reads
    assert "campaigns.id IN" in reads[1] and "campaigns.name IN" not in reads[1], "its row alone"
    everyone = DialerWorker(settings, db, now=lambda: NOW)
    assert sorted(c.name for c, _state in everyone._running_campaigns()[0]) == sorted([CAMPAIGN, "other"])


def test_a_running_campaigns_row_is_read_again_only_when_its_settings_moved(
    settings: Settings, db: Database
) -> None:
    """The pass's once-a-second read is of ids and updated_at (with has_due); the whole row, JSON
    and all, is loaded only when updated_at moved: a settings change or a status change moves it,
    the pacer's live figures do not (the worker keeps those itself) (issue 13, Round 8)."""
    make_campaign(db, "0")
    seen = _statements(db)
    w = DialerWorker(settings, db, now=lambda: NOW)

    def rows_read() -> int:
        seen.clear()
        running, _asked = w._running_campaigns()
        assert [c.name for c, _state in running] == [CAMPAIGN]
        return len([s for s in seen if "FROM campaigns" in s and "campaigns.id IN" in s])

    assert rows_read() == 1, "the first read loads the row"
    assert rows_read() == 0, "nothing changed: no row"
    with db.session() as session:  # the pacer's figures: not the settings' version
        session.execute(
            update(Campaign)
            .where(Campaign.name == CAMPAIGN)
            .values(pacing_live={"x": 1}, updated_at=Campaign.updated_at)
        )
    assert rows_read() == 0
    with db.session() as session:
        svc.update_campaign(session, CAMPAIGN, {"calls_per_second": 3}, actor="t")
    assert rows_read() == 1, "a settings change: the row again"
    running, _asked = w._running_campaigns()
    assert running[0][0].calls_per_second == 3 and running[0][1].bucket.rate == 3
    with db.session() as session:
        svc.set_status(session, CAMPAIGN, CampaignStatus.paused, actor="t")
    assert w._running_campaigns()[0] == [], "paused: gone at once, whatever its row"
    with db.session() as session:
        svc.set_status(session, CAMPAIGN, CampaignStatus.running, actor="t")
    assert rows_read() == 1, "resumed: its status moved updated_at, the row is read again"
