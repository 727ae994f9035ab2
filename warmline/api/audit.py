"""Reading the audit log (administrators only). There is no route that changes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from core.audit import recent
from core.deps import AdminUser, SessionDep

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


@router.get("")
def audit_log(_: AdminUser, session: SessionDep, limit: int = Query(100, ge=1, le=1000)) -> list[AuditOut]:
    return [
        AuditOut(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail)
        for e in recent(session, limit)
    ]
