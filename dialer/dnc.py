"""Do-not-call lists: one global (no campaign may call these numbers) and one per campaign.

Numbers enter one by one (API, CLI, an opt-out pressed in a call) or from a file read exactly like
a call list (CSV/XLSX, any of the encodings, a phone column found by name or content). A number put
on a list also cancels the pending contacts it belongs to, so it is not called even if it was
imported before the opt-out; the importer scrubs every new list against both lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import Database, utcnow
from core.phones import mask as mask_number
from core.phones import mask_in_text
from dialer.campaigns import CampaignError, require_campaign
from dialer.lists import phones
from dialer.lists.importer import ListLayout, open_list
from dialer.lists.mapping import is_blank
from dialer.models import Campaign, CampaignStatus, Contact, ContactState, DncCampaign, DncGlobal

BATCH = 2000


@dataclass
class DncResult:
    rows: int = 0
    added: int = 0
    already: int = 0
    rejected: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    contacts_cancelled: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "already": self.already,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "reasons": dict(self.reasons),
            "contacts_cancelled": self.contacts_cancelled,
            "rejects_sample": self.rejects[:50],
        }

    def reject(self, row: int | None, reason: str, detail: str, value: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        if len(self.rejects) < 50:
            self.rejects.append({"row": row, "reason": reason, "detail": detail, "value": value[:255]})


@dataclass(frozen=True)
class DncEntry:
    phone_e164: str
    campaign: str | None
    source: str
    reason: str | None
    added_by: str
    added_at: datetime

    def as_dict(self, *, mask: bool = False) -> dict[str, Any]:
        return {
            "phone": mask_number(self.phone_e164) if mask else self.phone_e164,
            "campaign": self.campaign,
            "source": self.source,
            "reason": mask_in_text(self.reason) if mask and self.reason else self.reason,
            "added_by": self.added_by,
            "added_at": self.added_at.isoformat(),
        }


def normalise(value: str, region: str = "CN") -> phones.Phone:
    """A number for a do-not-call list: any country (blocking a foreign number is harmless)."""
    return phones.normalise(value, region, None)


def _table(campaign: Campaign | None) -> Table:
    return DncCampaign.__table__ if campaign is not None else DncGlobal.__table__  # type: ignore[return-value]


def _existing(session: Session, numbers: Sequence[str], campaign: Campaign | None) -> set[str]:
    if campaign is None:
        stmt = select(DncGlobal.phone_e164).where(DncGlobal.phone_e164.in_(numbers))
    else:
        stmt = select(DncCampaign.phone_e164).where(
            DncCampaign.campaign_id == campaign.id, DncCampaign.phone_e164.in_(numbers)
        )
    return set(session.scalars(stmt))


def _insert_ignore(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), rows)


def _add_batch(
    session: Session,
    numbers: dict[str, int | None],
    result: DncResult,
    *,
    campaign: Campaign | None,
    source: str,
    reason: str | None,
    actor: str,
) -> None:
    if not numbers:
        return
    have = _existing(session, list(numbers), campaign)
    new = [n for n in numbers if n not in have]
    result.already += len(numbers) - len(new)
    if new:
        now = utcnow()
        base: dict[str, Any] = {"source": source[:128], "reason": reason, "added_by": actor, "added_at": now}
        if campaign is not None:
            base["campaign_id"] = campaign.id
        _insert_ignore(session, _table(campaign), [{**base, "phone_e164": n} for n in new])
        result.added += len(new)
    result.contacts_cancelled += cancel_contacts(session, list(numbers), campaign)


def cancel_contacts(session: Session, numbers: Sequence[str], campaign: Campaign | None) -> int:
    """Pending contacts with these numbers (in the campaign, or everywhere) will not be called."""
    if not numbers:
        return 0
    where: list[ColumnElement[bool]] = [
        Contact.phone_e164.in_(numbers),
        Contact.state == ContactState.pending,
    ]
    if campaign is not None:
        where.append(Contact.campaign_id == campaign.id)
    else:
        # Through the (campaign, number) key: one lookup per live campaign and number.
        live = select(Campaign.id).where(Campaign.status != CampaignStatus.finished)
        where.append(Contact.campaign_id.in_(live))
    res = session.execute(
        update(Contact)
        .where(*where)
        .values(state=ContactState.cancelled, last_outcome="dnc", next_due_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(res, "rowcount", 0) or 0)


def _add_all(
    session: Session,
    numbers: Iterable[tuple[int | None, str]],
    result: DncResult,
    **where: Any,
) -> None:
    """Normalise (row, number as written) pairs and add them in batches; repeats count as already."""
    batch: dict[str, int | None] = {}
    for row, raw in numbers:
        p = normalise(raw)
        if p.e164 is None:
            result.reject(row, p.reason or phones.INVALID, p.detail, raw)
            continue
        if p.e164 in batch:
            result.already += 1
            continue
        batch[p.e164] = row
        if len(batch) >= BATCH:
            _add_batch(session, batch, result, **where)
            batch = {}
    _add_batch(session, batch, result, **where)


def add_numbers(
    session: Session,
    values: Iterable[str],
    *,
    campaign: Campaign | None,
    source: str,
    reason: str | None,
    actor: str,
) -> DncResult:
    """Put numbers (as people write them) on the campaign's list, or the global one."""
    result = DncResult()

    def counted() -> Iterator[tuple[int | None, str]]:
        for value in values:
            result.rows += 1
            yield None, value

    _add_all(session, counted(), result, campaign=campaign, source=source, reason=reason, actor=actor)
    audit(
        session, actor, "dnc.add", campaign.name if campaign else "global", source=source[:128],
        added=result.added, already=result.already, rejected=result.rejected,
    )  # fmt: skip
    return result


def import_layout(
    session: Session,
    layout: ListLayout,
    *,
    campaign: Campaign | None,
    actor: str,
    source: str,
    reason: str | None = None,
) -> DncResult:
    """Every number of an opened list file onto a do-not-call list (in the caller's transaction)."""
    result = DncResult()
    cols = layout.columns
    header = cols.header_row or 0

    def phone_cells() -> Iterator[tuple[int | None, str]]:
        for row, _line, cells, formulas in layout.rows():
            if row <= header:
                continue
            result.rows += 1
            if is_blank(cells):
                result.skipped += 1
                continue
            raw = cells[cols.phone] if cols.phone < len(cells) else ""
            if formulas and cols.phone in formulas:
                result.reject(row, phones.FORMULA, "a formula, not a number", raw)
                continue
            yield row, raw

    _add_all(session, phone_cells(), result, campaign=campaign, source=source, reason=reason, actor=actor)
    audit(
        session, actor, "dnc.import", campaign.name if campaign else "global", file=layout.info.name,
        sha256=layout.info.sha256, rows=result.rows, added=result.added, already=result.already,
        rejected=result.rejected, contacts_cancelled=result.contacts_cancelled,
    )  # fmt: skip
    return result


def import_file(
    db: Database,
    stream: BinaryIO,
    file_name: str,
    *,
    campaign_name: str | None,
    actor: str,
    reason: str | None = None,
    mapping: dict[str, str] | None = None,
) -> DncResult:
    """A do-not-call file into the global list or a campaign's, in one transaction."""
    if campaign_name is not None:
        with db.session() as session:
            require_campaign(session, campaign_name)
    layout = open_list(stream, file_name, mapping=mapping)
    try:
        with db.session() as session:
            campaign = require_campaign(session, campaign_name) if campaign_name else None
            return import_layout(
                session,
                layout,
                campaign=campaign,
                actor=actor,
                source=f"file:{file_name}"[:128],
                reason=reason,
            )
    finally:
        layout.close()


def remove_number(session: Session, value: str, *, campaign: Campaign | None, actor: str) -> bool:
    """Take a number off a list (it may be called again). Contacts cancelled by it stay cancelled."""
    p = normalise(value)
    if p.e164 is None:
        raise CampaignError(f"{value!r}: {p.detail}")
    if campaign is None:
        stmt = delete(DncGlobal).where(DncGlobal.phone_e164 == p.e164)
    else:
        stmt = delete(DncCampaign).where(
            DncCampaign.campaign_id == campaign.id, DncCampaign.phone_e164 == p.e164
        )
    gone = int(getattr(session.execute(stmt), "rowcount", 0) or 0) > 0
    if gone:
        audit(
            session, actor, "dnc.remove", campaign.name if campaign else "global", phone=mask_number(p.e164)
        )
    return gone


def list_entries(
    session: Session,
    *,
    campaign: Campaign | None,
    limit: int = 100,
    offset: int = 0,
    search: str | None = None,
    exact: bool = False,
) -> tuple[int, list[DncEntry]]:
    """(total, one page) of a list, newest first. `search` matches any part of the number's digits,
    or (`exact`) the whole E.164 number only."""
    if campaign is None:
        model: type[DncGlobal] | type[DncCampaign] = DncGlobal
        where: list[ColumnElement[bool]] = []
    else:
        model = DncCampaign
        where = [DncCampaign.campaign_id == campaign.id]
    if search and exact:
        where.append(model.phone_e164 == search)
    elif search:
        digits = "".join(c for c in search if c.isdigit())
        where.append(model.phone_e164.like(f"%{digits}%"))
    total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    stmt = (
        select(model)
        .where(*where)
        .order_by(model.added_at.desc(), model.id.desc())
        .limit(limit)
        .offset(offset)
    )
    name = campaign.name if campaign else None
    found = cast(list[DncGlobal | DncCampaign], list(session.scalars(stmt)))
    entries = [DncEntry(e.phone_e164, name, e.source, e.reason, e.added_by, e.added_at) for e in found]
    return total, entries


def blocked_numbers(session: Session, campaign_id: int, numbers: Collection[str]) -> set[str]:
    """Which of `numbers` are on either list: `is_blocked` for a claim's candidates in one query."""
    wanted = sorted(set(numbers))
    if not wanted:
        return set()
    return set(session.scalars(_BLOCKED, {"b_numbers": wanted, "b_campaign": campaign_id}))


# Built once (the claim's hot path runs it every claim): the numbers and the campaign are bound.
_BLOCKED = union(
    select(DncGlobal.phone_e164).where(DncGlobal.phone_e164.in_(bindparam("b_numbers", expanding=True))),
    select(DncCampaign.phone_e164).where(
        DncCampaign.campaign_id == bindparam("b_campaign"),
        DncCampaign.phone_e164.in_(bindparam("b_numbers", expanding=True)),
    ),
)


def is_blocked(session: Session, campaign_id: int, e164: str) -> bool:
    """The dialer's last check before it dials: on either list?"""
    if session.scalar(select(DncGlobal.id).where(DncGlobal.phone_e164 == e164).limit(1)) is not None:
        return True
    stmt = select(DncCampaign.id).where(
        DncCampaign.campaign_id == campaign_id, DncCampaign.phone_e164 == e164
    )
    return session.scalar(stmt.limit(1)) is not None
