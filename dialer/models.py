"""The dialer's tables: campaigns, their contacts, list imports and do-not-call lists.

The contact table is shaped for the dialer as well as the importer: one row per number per
campaign (unique, so a second import of the same list adds nothing), a state, the attempt counters
and the moment it is next due, and where it came from (import and row) so every contact can be
traced back to the line a person can find in their spreadsheet.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from core.i18n import N_

if TYPE_CHECKING:
    from dialer.campaigns import CampaignSpec

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CampaignKind(enum.StrEnum):
    broadcast = "broadcast"  # a recorded message / IVR flow, no agent
    agent = "agent"  # an answered call is connected to an agent


class CampaignMode(enum.StrEnum):
    """Who places a campaign's calls. ``broadcast``: the dialer dials and plays the IVR flow or
    hands an answered call to an agent (as ``kind`` says); ``preview``: agents pull contacts one by
    one and place the calls themselves (the dialer never dials them); ``progressive`` and
    ``predictive``: the dialer dials for waiting agents, as many calls at a time as the campaign's
    pacer says (dialer.pacing), under the campaign's hard abandon cap."""

    broadcast = "broadcast"
    preview = "preview"
    progressive = "progressive"
    predictive = "predictive"


AGENT_MODES = frozenset({CampaignMode.preview, CampaignMode.progressive, CampaignMode.predictive})


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    finished = "finished"


class ContactState(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt (next_due_at)
    in_progress = "in_progress"  # claimed by a dialer, a call is being placed
    done = "done"  # reached: the campaign's goal for this contact is met
    exhausted = "exhausted"  # retries used up without reaching anyone
    cancelled = "cancelled"  # not to be called: put on a do-not-call list after import, a wrong number


# What each value is called where a person reads it (translate with `_()`); the value is the code.
KIND_NAMES = {
    CampaignKind.broadcast: N_("voice broadcast"),
    CampaignKind.agent: N_("agent-connected"),
}
STATUS_NAMES = {
    CampaignStatus.draft: N_("draft"),
    CampaignStatus.running: N_("running"),
    CampaignStatus.paused: N_("paused"),
    CampaignStatus.finished: N_("finished"),
}
CONTACT_STATE_NAMES = {
    ContactState.pending: N_("pending"),
    ContactState.in_progress: N_("in progress"),
    ContactState.done: N_("done"),
    ContactState.exhausted: N_("out of attempts"),
    ContactState.cancelled: N_("cancelled"),
}


class ImportStatus(enum.StrEnum):
    done = "done"
    failed = "failed"


def _enum(cls: type[enum.StrEnum], length: int = 16) -> Enum:
    return Enum(cls, native_enum=False, length=length, validate_strings=True)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))
    kind: Mapped[CampaignKind] = mapped_column(_enum(CampaignKind))
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus), default=CampaignStatus.draft)
    flow: Mapped[str | None] = mapped_column(String(64))
    elder_welfare: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": ["09:00-11:30", "14:30-17:00"], ..., "sun": []} in the callee's local time.
    windows: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    skip_dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    caller_id: Mapped[str | None] = mapped_column(String(32))
    # {"busy": {"delay_minutes": 10, "growth": 1.5, "max_attempts": 3, "max_delay_minutes": null}, ...}
    retry: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON)
    max_attempts: Mapped[int] = mapped_column(Integer)
    daily_cap: Mapped[int] = mapped_column(Integer)
    rolling_cap: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    amd: Mapped[str] = mapped_column(String(16))
    max_channels: Mapped[int] = mapped_column(Integer)
    calls_per_second: Mapped[float] = mapped_column(Float)
    allowed_countries: Mapped[list[str]] = mapped_column(JSON)
    # [{"code": "callback", "label": "约定回拨", "label_en": …, "action": "callback"}, …], key 1 first;
    # None (campaigns from before these existed): the defaults.
    dispositions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    callback_grace_minutes: Mapped[float] = mapped_column(Float, default=30.0)
    mode: Mapped[CampaignMode] = mapped_column(_enum(CampaignMode), default=CampaignMode.broadcast)
    # Agents with the manual-dial permission may dial a typed number for this campaign.
    manual_dial: Mapped[bool] = mapped_column(default=False)
    # What an agent needs to take this campaign's agent calls (preview contacts; answered calls of an
    # agent campaign without an IVR flow): a skill and a language, as routing reads them.
    skill: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    # The least agent level (trainee < supervised < agent) that may take its calls; None: any.
    min_level: Mapped[str | None] = mapped_column(String(16))
    # After the agent hangs up, the callee is asked to rate the call 1-5 (ivr.survey; migration 2480).
    survey: Mapped[bool] = mapped_column(default=False)
    # ... and may then leave a recorded comment of at most this many seconds (None: no comment).
    survey_comment_seconds: Mapped[int | None] = mapped_column(Integer)
    # The agents' call script (Markdown with {field} placeholders), the form they answer about a
    # call ({"title", "record", "questions": [...]}), the list columns the screen pop shows.
    script: Mapped[str | None] = mapped_column(Text)
    form: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Outside numbers agents may transfer this campaign's calls to: name -> number (migration 2000).
    transfer_numbers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    screen_pop: Mapped[list[str] | None] = mapped_column(JSON)
    # {"purpose": "...", "recordings_days": 90}: how long its recordings are kept and why (None:
    # Settings.recordings_retention_days). recordings.retention reads it through the table.
    retention: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Progressive and predictive campaigns: the abandon limit, its window, the grace and the
    # apology (dialer.campaigns.PacingSpec); None: the defaults.
    pacing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the dialer's pacer last said and the live figures (abandon rate in the window,
    # occupancy, agent wait), written by the worker so every process shows the same.
    pacing_live: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime | None]

    @property
    def spec(self) -> CampaignSpec:
        """The campaign's settings as a validated spec (what the pure schedule functions take)."""
        from dialer.campaigns import spec_of

        return spec_of(self)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # One row per number per campaign: makes a repeated import add nothing.
        UniqueConstraint("campaign_id", "phone_e164", name="uq_contacts_campaign_phone"),
        # The dialer's claim: due, pending contacts of a running campaign.
        Index("ix_contacts_due", "campaign_id", "state", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone_e164: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(128))
    # The list's other columns by their header text, for prompts and call scripts.
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The callee's IANA time zone when it differs from the campaign's (None: the campaign's).
    timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[ContactState] = mapped_column(_enum(ContactState), default=ContactState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts per outcome ({"busy": 2}) and per agents' "retry later" wrap-up ({"retry_later": 1}),
    # for the per-rule retry limits.
    outcome_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    next_due_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("list_imports.id", ondelete="SET NULL"))
    row_number: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A callback an agent promised: until `assigned_until` the dialer calls the contact only while
    # that agent is available, and the hand-over offers the call to them first.
    assigned_agent: Mapped[str | None] = mapped_column(String(64))
    assigned_until: Mapped[datetime | None]
    # A preview campaign's contact shown to one agent: nobody else is offered it until then.
    reserved_by: Mapped[str | None] = mapped_column(String(64))
    reserved_until: Mapped[datetime | None]


class ListImport(Base):
    """One upload of a call list: the file (by checksum), who, when, and what became of each row."""

    __tablename__ = "list_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(16))
    sheet: Mapped[str | None] = mapped_column(String(64))
    header_row: Mapped[int | None] = mapped_column(Integer)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Names of the contact fields this import brought (the columns kept besides phone and name).
    field_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ImportReject(Base):
    """A row an import did not accept, with the reason: the downloadable part of the report."""

    __tablename__ = "list_import_rejects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("list_imports.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class DncGlobal(Base):
    """Numbers no campaign may call (opt-outs, regulator lists)."""

    __tablename__ = "dnc_global"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(255))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class DncCampaign(Base):
    """Numbers one campaign must not call."""

    __tablename__ = "dnc_campaign"
    __table_args__ = (UniqueConstraint("campaign_id", "phone_e164", name="uq_dnc_campaign_campaign_phone"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone_e164: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(255))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttemptState(enum.StrEnum):
    created = "created"  # written before the originate; its id is the channel id
    dialing = "dialing"  # ARI accepted the originate
    answered = "answered"  # the callee picked up
    ended = "ended"  # classified; the contact was updated in the same transaction
    reconciled = "reconciled"  # found without a live channel after a crash or restart, and closed


class Attempt(Base):
    """One call attempt to one contact: the ledger the dialer writes before it dials.

    The id is a UUID used as the ARI channel id, so a restarted dialer can match its attempts with
    the channels Asterisk still has. `(contact_id, attempt_no)` is unique: an attempt is never
    counted twice.
    """

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("contact_id", "attempt_no", name="uq_attempts_contact_attempt_no"),
        # Live attempts, for capacity and reconciliation.
        Index("ix_attempts_state", "state", "campaign_id"),
        # Figures per campaign over time.
        Index("ix_attempts_campaign_created", "campaign_id", "created_at"),
        # An agent's calls, newest first.
        Index("ix_attempts_agent_created", "agent", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState), default=AttemptState.created)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    amd_status: Mapped[str | None] = mapped_column(String(16))
    flow_outcome: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    digits: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The agent who took the call, written when the hand-over connects them: whose wrap-up it is.
    agent: Mapped[str | None] = mapped_column(String(64))
    # The agent's wrap-up, stored by POST /api/agents/me/wrapup (None until then).
    disposition: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    callback_at: Mapped[datetime | None]  # when the callback is due (after any move into a window)
    wrapped_up_at: Mapped[datetime | None]


class PreviewSkip(Base):
    """An agent passed over a previewed contact, and why: the contact goes back to the others and
    is not offered to this agent again that day."""

    __tablename__ = "preview_skips"
    __table_args__ = (Index("ix_preview_skips_agent_at", "agent", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    agent: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]
