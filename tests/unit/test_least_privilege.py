"""Least privilege, walked: every route of the real app, requested for real by every role and by
nobody, answers as the table in docs/security-roles.md says -- and every route has a row there.

A role the table gives a route must get past the role check (any answer but 401 or 403 `forbidden`:
a made-up id answers 404, a missing body 422); a role it refuses must be refused (403 `forbidden`;
nobody: 401, or for a console page the redirect to sign in). Each request carries a fresh bearer token of its own, so a
sign-out along the way spoils nothing. The limits inside routes (whose rows, which columns) are
tested with their features; see the doc."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import AsteriskNode, Settings
from tests.unit.test_api import api_routes
from tests.utils import PASSWORD
from warmline.app import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "security-roles.md"
NOBODY = "anonymous"
COLUMNS = (NOBODY, *(r.value for r in (Role.agent, Role.qa, Role.supervisor, Role.manager, Role.admin)))
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|(.*)\|\s*$")
MADE_UP_ID = "999999"  # fits an int or a string id; no row has it


@dataclass(frozen=True)
class Entry:
    method: str
    path: str
    allowed: frozenset[str]


def the_table() -> dict[tuple[str, str], Entry]:
    entries = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m is None:
            continue
        cells = [c.strip() for c in m[3].split("|")]
        assert len(cells) >= len(COLUMNS), f"{DOC.name}: a cell per role (and Limits): {line}"
        allowed = frozenset(col for col, cell in zip(COLUMNS, cells, strict=False) if cell.startswith("✓"))
        assert (m[1], m[2]) not in entries, f"{DOC.name}: {m[1]} {m[2]} has two rows"
        entries[(m[1], m[2])] = Entry(m[1], m[2], allowed)
    return entries


def the_routes(app: object) -> Iterator[tuple[str, APIRoute]]:
    for route in api_routes(app.routes):  # type: ignore[attr-defined]
        for method in sorted(route.methods or ()):
            yield method, route


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = [
        AsteriskNode(name="nowhere", ari_url="http://127.0.0.1:9/ari", ari_password="x")
    ]
    with db.session() as s:
        for role in Role:
            service.create_user(s, role.value, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db), raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def fresh_token(db: Database, name: str) -> dict[str, str]:
    with db.session() as s:
        user = service.require_user(s, name)
        return {"Authorization": f"Bearer {service.issue_token(s, user, ttl=timedelta(minutes=5))}"}


def concrete(path: str, who: str) -> str:
    """The route's path with its parameters filled: an agent's `{name}` is the requester's own (an
    agent reads their own profile), every other id one that does not exist."""
    if path.startswith("/api/agents/{name}") and who != NOBODY:
        path = path.replace("{name}", who)
    return re.sub(r"\{[^}]+\}", MADE_UP_ID, path)


def refused(resp: httpx.Response, who: str) -> bool:
    """Turned away by the role check: 401, or 403 `forbidden` (a 403 with another code is a rule
    inside the route -- an administrator is not an agent with a phone -- so the role got in)."""
    if who == NOBODY and resp.status_code == 303:
        return resp.headers["location"].startswith("/login?next=")  # a console page: sign in first
    if resp.status_code == 403:
        return bool(resp.json()["detail"]["code"] == "forbidden")
    return resp.status_code == 401


def test_every_route_answers_every_role_as_the_table_says(client: TestClient, db: Database) -> None:
    table = the_table()
    routes = list(the_routes(client.app))
    missing = sorted(f"{m} {r.path}" for m, r in routes if (m, r.path) not in table)
    assert missing == [], f"routes without a row in {DOC.name}: add one (who may use it?)"
    stale = sorted(f"{m} {p}" for m, p in table if not any(m == rm and p == r.path for rm, r in routes))
    assert stale == [], f"rows in {DOC.name} for routes the app does not have"
    wrong = []
    for method, route in routes:
        expected = table[(method, route.path)].allowed
        for who in COLUMNS:
            headers = fresh_token(db, who) if who != NOBODY else {}
            resp = client.request(method, concrete(route.path, who), headers=headers)
            if resp.status_code >= 500 and route.path != "/healthz":  # 503: nothing reachable here
                wrong.append(f"{method} {route.path} as {who}: server error {resp.status_code}")
            elif refused(resp, who) == (who in expected):
                said = "allowed" if who in expected else "refused"
                wrong.append(f"{method} {route.path} as {who}: the table says {said}, got {resp.status_code}")
    assert not wrong, "\n".join(wrong)
    assert len(routes) > 100 and len(COLUMNS) * len(routes) > 600, "every route, every role"
