"""The recordings registry's tables. Kept small: the agent bridge writes one row per recorded
call (``source="agent-bridge"``) when the call ends; the registry (issue 6) adds checksum, size,
duration, retention and analytics on top of it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class RecordingStatus(enum.StrEnum):
    """What the registry knows of the file (issue 6: `warmline recordings verify` and `purge`)."""

    ok = "ok"  # present and, when last verified, intact
    missing = "missing"  # the file is gone
    corrupt = "corrupt"  # size or checksum differs, or the audio cannot be read
    purged = "purged"  # deleted on purpose at the end of its campaign's retention


class CallRecording(Base):
    """One recorded call: a stereo file named by UUID under ``recordings_dir/YYYY/MM/DD/``.

    ``path`` is relative to the recordings folder (never holds a phone number). For the agent
    bridge the left channel is the agent and the right channel the far end (customer).
    """

    __tablename__ = "call_recordings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the file's UUID
    path: Mapped[str] = mapped_column(String(255), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    attempt_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Copied from the campaign when the call is recorded: QA and lists read them from here.
    campaign: Mapped[str | None] = mapped_column(String(64))
    elder_welfare: Mapped[bool] = mapped_column(default=False, server_default=false())
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None]
    channels: Mapped[int] = mapped_column(Integer, default=2)
    source: Mapped[str] = mapped_column(String(32), default="agent-bridge")

    # --- the registry (recordings.service.register_recording), added by issue 6 ---
    duration_s: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)  # of the audio (the plain WAV)
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)  # on disk (more when encrypted)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)  # of the audio (the plain WAV)
    encrypted: Mapped[bool] = mapped_column(default=False, server_default="0")
    status: Mapped[RecordingStatus] = mapped_column(
        Enum(RecordingStatus, native_enum=False, length=16, validate_strings=True),
        default=RecordingStatus.ok,
        server_default="ok",
    )
    problem: Mapped[str | None] = mapped_column(String(500))  # what verify found
    registered_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    # The call's outcome (opted_out, help, ...) and whether it raised a welfare alert: QA rules.
    outcome: Mapped[str | None] = mapped_column(String(32))
    escalated: Mapped[bool] = mapped_column(default=False, server_default="0")
    # recordings.analytics.CallAnalytics as JSON (segments included, for the reviewer's timeline).
    analytics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    analytics_error: Mapped[str | None] = mapped_column(String(500))
    # A practice call (a scenario played to a trainee, no citizen on it): never sampled as a
    # real call, never counted in real reports; scored only when a trainer puts it up.
    practice: Mapped[bool] = mapped_column(default=False, server_default=false())


class RecordingRetention(Base):
    """How long a campaign's recordings are kept. A campaign without a row keeps them for
    Settings.recordings_retention_days, or forever when that is not set."""

    __tablename__ = "recording_retention"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))
