"""The HTTP API: every route declares its roles; sign-in, tokens, admin-only user management."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.deps import Public, Roles
from core.settings import AsteriskNode, Settings
from tests.utils import PASSWORD, login
from warmline.app import create_app


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    # An Asterisk node on a port nothing listens on: health must say so, user changes must not fail.
    settings.asterisk_nodes = [
        AsteriskNode(name="nowhere", ari_url="http://127.0.0.1:9/ari", ari_password="x")
    ]
    with db.session() as s:
        service.create_user(s, "root", Role.admin, PASSWORD, actor="test")
        service.create_user(s, "agent1", Role.agent, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as c:
        yield c


def _declares_roles(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Roles | Public):
            return True
        stack.extend(dep.dependencies)
    return False


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (newer FastAPI nests them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
            continue
        inner = getattr(route, "original_router", route)  # FastAPI >= 0.16x wraps included routers
        if isinstance(getattr(inner, "routes", None), list):
            yield from api_routes(inner.routes)


def test_every_route_declares_roles(settings: Settings, db: Database) -> None:
    app = create_app(settings, db)
    routes = list(api_routes(app.routes))
    assert len(routes) > 10
    undeclared = [r.path for r in routes if not _declares_roles(r)]
    assert undeclared == []


def test_sign_in_and_me(client: TestClient) -> None:
    assert client.get("/api/me").status_code == 401
    bad = client.post("/api/auth/token", json={"username": "root", "password": "nope"})
    assert bad.status_code == 401
    admin = login(client, "root")
    me = client.get("/api/me", headers=admin).json()
    assert me["name"] == "root" and me["role"] == "admin"
    actions = [(e["actor"], e["action"]) for e in client.get("/api/audit", headers=admin).json()]
    assert ("root", "login.fail") in actions, "a failed sign-in is audited even though the request fails"
    assert client.get("/api/audit", headers=login(client, "agent1")).status_code == 403


def test_users_admin_only_and_agent_provisioned(client: TestClient) -> None:
    agent = login(client, "agent1")
    assert client.get("/api/users", headers=agent).status_code == 403
    admin = login(client, "root")
    created = client.post(
        "/api/users", headers=admin, json={"name": "agent2", "role": "agent", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["sip_endpoint"] == "agent2"
    assert "reload failed" in body["sync"]["nowhere"]  # file written; the node is down
    dup = client.post(
        "/api/users", headers=admin, json={"name": "agent2", "role": "agent", "password": PASSWORD}
    )
    assert dup.status_code == 422 and "already exists" in dup.json()["detail"]
    sip = client.get("/api/agents/me/sip", headers=login(client, "agent2")).json()
    assert sip["username"] == "agent2" and len(sip["password"]) >= 32
    gone = client.post("/api/users/agent2/disable", headers=admin)
    assert gone.status_code == 200 and gone.json()["disabled"] is True
    assert client.get("/api/agents/me/sip", headers={"Authorization": sip and "Bearer x"}).status_code == 401


def test_healthz_reports_each_part(client: TestClient) -> None:
    resp = client.get("/healthz")
    body = resp.json()
    assert body["database"]["ok"] is True
    assert body["bus"]["ok"] is True  # the real Mosquitto on 127.0.0.1:1883
    assert body["asterisk"]["nowhere"]["ok"] is False
    assert resp.status_code == 503 and body["ok"] is False


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/auth/token" in spec["paths"] and "/healthz" in spec["paths"]


def test_console_redirects_to_login_and_is_role_aware(client: TestClient) -> None:
    resp = client.get("/console", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    form = client.post("/login", data={"username": "agent1", "password": PASSWORD}, follow_redirects=False)
    assert form.status_code == 303
    home = client.get("/console").text
    assert "My day" in home and "Users" not in home
    assert client.get("/console/users", follow_redirects=False).status_code == 403
    assert client.get("/console/reviews", follow_redirects=False).status_code == 403
    assert client.get("/console/my-day").status_code == 200
