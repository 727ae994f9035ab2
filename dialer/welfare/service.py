"""Elder-welfare escalation: raise, acknowledge and resolve alerts, every step audited.

The dialer raises an alert inside its own transaction (the attempt's close), so the alert lands
if and only if the attempt's outcome does. The new row is also the pending notice: the notifier in
:mod:`dialer.welfare.events` finds it after the commit and tells people (bus event, webhook), so no
notice is lost, and the console lists the alert whatever became of the notifications.

States: ``open`` -> ``acknowledged`` -> ``resolved`` (``open`` -> ``resolved`` is allowed too: a
supervisor who settles it at once need not acknowledge first). Raising the same kind for the same
contact again while one is unresolved returns the existing alert (a partial unique index enforces
it on both databases).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import audit, note_ref
from core.db import utcnow
from core.errors import CodedError
from core.formats import spoken_phone
from core.i18n import N_, _, name_of
from core.phones import mask
from dialer.models import Campaign, Contact
from dialer.welfare.models import Alert, AlertState

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "dialer"
MAX_NOTE = 2000


class AlertError(CodedError):
    """A transition that is not allowed (the message says which and why, in the current locale)."""


class AlertNotFound(LookupError):
    code = "no_such_alert"


def _unresolved(session: Session, contact_id: int | None, kind: str) -> Alert | None:
    if contact_id is None:
        return None
    return session.scalar(
        select(Alert).where(
            Alert.contact_id == contact_id, Alert.kind == kind, Alert.state != AlertState.resolved
        )
    )


def raise_alert(
    session: Session,
    *,
    campaign: Campaign | None,
    contact: Contact | None,
    attempt_id: str | None,
    kind: str,
    detail: dict[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> Alert:
    """Open an alert for the contact (idempotent per contact and kind while unresolved)."""
    kind = (kind or "other").strip()[:32] or "other"
    contact_id = contact.id if contact is not None else None
    existing = _unresolved(session, contact_id, kind)
    if existing is not None:
        return existing
    alert = Alert(
        campaign_id=campaign.id if campaign is not None else None,
        contact_id=contact_id,
        attempt_id=attempt_id,
        kind=kind,
        state=AlertState.open,
        phone_masked=mask(contact.phone_e164) if contact is not None else "",
        contact_name=contact.name if contact is not None else None,
        campaign_name=campaign.name if campaign is not None else None,
        detail=_safe_detail(detail or {}),
        created_at=utcnow(),
    )
    if session.get_bind().dialect.name != "postgresql":
        # SQLite has one writer at a time, and pysqlite's SAVEPOINT would commit early.
        session.add(alert)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(alert)
                session.flush()
        except IntegrityError:
            # Raised concurrently by another worker: theirs stands.
            existing = _unresolved(session, contact_id, kind)
            if existing is None:
                raise
            return existing
    audit(
        session,
        actor,
        "welfare.alert.raise",
        f"alert:{alert.id}",
        kind=kind,
        campaign=alert.campaign_name,
        contact_id=contact_id,
        attempt_id=attempt_id,
    )
    log.info("welfare alert %s (%s) for contact %s", alert.id, kind, contact_id)
    return alert


def _safe_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as stored: JSON-safe, numbers masked wherever a key says phone."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if "phone" in key.lower() and isinstance(value, str):
            out[key] = mask(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, str | int | float | bool) else str(v) for v in value]
        elif isinstance(value, dict):
            out[key] = _safe_detail(value)
        else:
            out[key] = str(value)
    return out


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(_("no welfare alert {id}", id=alert_id))
    return alert


def acknowledge(session: Session, alert_id: int, *, actor: str, note: str | None = None) -> Alert:
    """A supervisor has seen the alert and is acting on it."""
    alert = get_alert(session, alert_id)
    if alert.state is AlertState.acknowledged:
        return alert
    if alert.state is AlertState.resolved:
        raise _already_resolved(alert)
    alert.state = AlertState.acknowledged
    alert.acknowledged_by = actor
    alert.acknowledged_at = utcnow()
    ref = note_ref(session, (note or "")[:MAX_NOTE], f"alert:{alert.id}")  # the log keeps a reference
    audit(session, actor, "welfare.alert.acknowledge", f"alert:{alert.id}", note=ref)
    return alert


def resolve(session: Session, alert_id: int, *, actor: str, resolution: str) -> Alert:
    """The elder has been reached or helped; ``resolution`` says how (required)."""
    text = (resolution or "").strip()
    if not text:
        raise AlertError(
            _("say how the alert was resolved (the resolution note is required)"), code="resolution_required"
        )
    if len(text) > MAX_NOTE:
        raise AlertError(
            _("the resolution note is {n} characters; at most {most}", n=len(text), most=MAX_NOTE),
            code="resolution_too_long",
        )
    alert = get_alert(session, alert_id)
    if alert.state is AlertState.resolved:
        raise _already_resolved(alert)
    now = utcnow()
    if alert.acknowledged_at is None:
        alert.acknowledged_by = actor
        alert.acknowledged_at = now
    alert.state = AlertState.resolved
    alert.resolved_by = actor
    alert.resolved_at = now
    alert.resolution = text
    ref = note_ref(session, text, f"alert:{alert.id}")
    audit(session, actor, "welfare.alert.resolve", f"alert:{alert.id}", resolution=ref)
    return alert


def list_alerts(
    session: Session,
    *,
    states: Sequence[AlertState] | None = None,
    campaign_id: int | None = None,
    since_id: int | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Newest first; ``states`` None means every state."""
    stmt = select(Alert)
    if states:
        stmt = stmt.where(Alert.state.in_(list(states)))
    if campaign_id is not None:
        stmt = stmt.where(Alert.campaign_id == campaign_id)
    if since_id is not None:
        stmt = stmt.where(Alert.id > since_id)
    return list(session.scalars(stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Alert.state, func.count()).group_by(Alert.state)).all()
    out = {s.value: 0 for s in AlertState}
    for state, n in rows:
        out[AlertState(state).value] = int(n)
    return out


def describe(alert: Alert) -> dict[str, Any]:
    """What the API and the console show (masked number only)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": alert.id,
        "kind": alert.kind,
        "state": alert.state.value,
        "campaign": alert.campaign_name,
        "campaign_id": alert.campaign_id,
        "contact_id": alert.contact_id,
        "contact_name": alert.contact_name,
        "phone": alert.phone_masked,
        "attempt_id": alert.attempt_id,
        "detail": alert.detail,
        "created_at": iso(alert.created_at),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_by": alert.resolved_by,
        "resolved_at": iso(alert.resolved_at),
        "resolution": alert.resolution,
        "webhook": alert.webhook_status,
    }


def _already_resolved(alert: Alert) -> AlertError:
    return AlertError(
        _("alert {id} is already resolved (by {who})", id=alert.id, who=alert.resolved_by),
        code="already_resolved",
    )


KIND_TEXT = {
    "unreached": N_("not reached after every attempt"),
    "help": N_("asked for help"),
    "no_input": N_("answered but pressed no key"),
    "overtime_near": N_("is near overtime"),
    "calls_held_back": N_("answers slowly: new calls are being held back"),
}
STATE_NAMES = {
    AlertState.open: N_("open"),
    AlertState.acknowledged: N_("acknowledged"),
    AlertState.resolved: N_("resolved"),
}


def state_name(state: str) -> str:
    return name_of(STATE_NAMES, state)


def summary_text(alert: Alert, *, spoken: bool = False) -> str:
    """One sentence for a person: who, what, where. `spoken`: the masked number as a screen reader
    should say it, digit by digit (core.formats.spoken_phone), for a live region."""
    agent = alert.detail.get("agent") if alert.contact_id is None else None
    node = alert.detail.get("node") if alert.contact_id is None else None
    who = alert.contact_name or (
        _("Agent {agent}", agent=agent)
        if agent
        else _("Asterisk node {node}", node=node)
        if node
        else _("A contact")
    )
    known = KIND_TEXT.get(alert.kind)
    what = _(known) if known else alert.kind.replace("_", " ")
    phone = spoken_phone(alert.phone_masked) if spoken else alert.phone_masked
    if alert.campaign_name:
        return _(
            "{who}, {phone}, {what} ({campaign}).",
            who=who,
            phone=phone,
            what=what,
            campaign=alert.campaign_name,
        )
    if not phone:
        return _("{who}, {what}.", who=who, what=what)
    return _("{who}, {phone}, {what}.", who=who, phone=phone, what=what)
