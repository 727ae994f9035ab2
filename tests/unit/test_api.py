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
from tests.utils import PASSWORD, console_login, login
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
    assert body["sip_endpoint"].startswith("ag") and body["sip_endpoint"] != "agent2"
    assert "reload failed" in body["sync"]["nowhere"]  # file written; the node is down
    dup = client.post(
        "/api/users", headers=admin, json={"name": "agent2", "role": "agent", "password": PASSWORD}
    )
    assert dup.status_code == 422 and dup.json()["detail"] == {
        "code": "user_exists",
        "message": "用户“agent2”已存在",
    }
    in_english = client.post(
        "/api/users",
        headers=admin | {"Accept-Language": "en-GB,en;q=0.9"},
        json={"name": "agent2", "role": "agent", "password": PASSWORD},
    )
    assert in_english.json()["detail"] == {"code": "user_exists", "message": "user 'agent2' already exists"}
    sip = client.get("/api/agents/me/sip", headers=login(client, "agent2")).json()
    assert sip["username"] == body["sip_endpoint"] and len(sip["password"]) >= 32
    assert sip["transport"] == "tls" and sip["srtp"] == "mandatory" and sip["registrar"].startswith("sips:")
    gone = client.post("/api/users/agent2/disable", headers=admin)
    assert gone.status_code == 200 and gone.json()["disabled"] is True
    assert client.get("/api/agents/me/sip", headers={"Authorization": sip and "Bearer x"}).status_code == 401


def test_healthz_reports_each_part_to_admins_only(client: TestClient) -> None:
    anonymous = client.get("/healthz")
    assert anonymous.status_code == 503 and anonymous.json() == {"ok": False, "status": "degraded"}, (
        "no error text, no versions"
    )
    agent = client.get("/healthz", headers=login(client, "agent1"))
    assert agent.status_code == 503 and agent.json() == {"ok": False, "status": "degraded"}
    resp = client.get("/healthz", headers=login(client, "root"))
    body = resp.json()
    assert body["database"]["ok"] is True
    assert body["bus"]["ok"] is True  # the real Mosquitto on 127.0.0.1:1883
    assert body["asterisk"]["nowhere"]["ok"] is False
    assert resp.status_code == 503 and body["ok"] is False
    assert body["dialer"] is None, "no dialer reported"


def test_healthz_says_degraded_with_the_dialers_faults(client: TestClient, settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from dialer.engine.faults import DatabaseWatch, FaultBoard

    watch = DatabaseWatch(lambda: None)
    watch.failed(OperationalError("SELECT 1", {}, Exception("refused")))
    FaultBoard(settings.var_dir / "dialer" / "faults.json", watch, bus_connected=lambda: False).write()
    assert client.get("/healthz").json() == {"ok": False, "status": "degraded"}
    body = client.get("/healthz", headers=login(client, "root")).json()
    assert body["status"] == "degraded"
    assert body["dialer"]["degraded"] == ["database", "bus"] and body["dialer"]["new_calls_paused"] is True
    page = client.get("/console/system", headers=login(client, "root") | {"Accept-Language": "en"}).text
    assert "database unreachable: new calls paused, 0 outcomes kept in the journal" in page


def test_openapi_and_docs_are_for_admins_only(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/openapi.json", headers=login(client, "agent1")).status_code == 403
    assert client.get("/docs", follow_redirects=False).headers["location"].startswith("/login")
    admin = login(client, "root")
    spec = client.get("/openapi.json", headers=admin).json()
    assert "/api/auth/token" in spec["paths"] and "/healthz" in spec["paths"]
    docs = client.get("/docs", headers=admin)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "'sha256-" in docs.headers["content-security-policy"], "its inline script is allowed by hash only"


def test_console_redirects_to_login_and_is_role_aware(client: TestClient) -> None:
    resp = client.get("/console", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    form = console_login(client, "agent1")
    assert form.status_code == 303
    home = client.get("/console").text
    assert '<html lang="zh-CN">' in home
    assert ">我的今天</a>" in home and ">用户</a>" not in home
    assert client.get("/console/users", follow_redirects=False).status_code == 403
    assert client.get("/console/reviews", follow_redirects=False).status_code == 403
    assert client.get("/console/my-day").status_code == 200


def test_errors_speak_the_requesters_language_with_stable_codes(client: TestClient) -> None:
    # Nobody signed in: the browser's language, else zh-CN; the code is the same in both.
    anonymous = client.get("/api/me")
    assert anonymous.status_code == 401 and anonymous.json()["detail"]["code"] == "not_signed_in"
    assert anonymous.json()["detail"]["message"].startswith("尚未登录")
    english = client.get("/api/me", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
    assert english.json()["detail"] == {
        "code": "not_signed_in",
        "message": "not signed in: send 'Authorization: Bearer <token>'",
    }
    bad = client.post("/api/auth/token", json={"username": "root", "password": "nope"})
    assert bad.json()["detail"] == {"code": "bad_credentials", "message": "用户名或密码错误"}
    agent = login(client, "agent1")
    forbidden = client.get("/api/users", headers=agent | {"Accept-Language": "en"})
    assert forbidden.status_code == 403 and forbidden.json()["detail"]["code"] == "forbidden"
    assert forbidden.json()["detail"]["message"] == "role agent may not do this (admin)"


def test_a_user_chooses_a_language_that_outranks_the_browser(client: TestClient, db: Database) -> None:
    agent = login(client, "agent1")
    assert client.get("/api/me", headers=agent).json()["language"] is None
    chose = client.patch("/api/me", headers=agent, json={"language": "en"})
    assert chose.status_code == 200 and chose.json()["language"] == "en"
    with db.session() as s:
        assert service.require_user(s, "agent1").language == "en"  # stored by the request itself
    # A Chinese browser, an English user: English.
    refused = client.get("/api/users", headers=agent | {"Accept-Language": "zh-CN"})
    assert refused.json()["detail"]["message"] == "role agent may not do this (admin)"
    wrong = client.patch("/api/me", headers=agent, json={"language": "fr"})
    assert wrong.status_code == 422 and wrong.json()["detail"]["code"] == "unsupported_language"
    # An administrator sets it back to the browser's (auto).
    admin = login(client, "root")
    reset = client.patch("/api/users/agent1", headers=admin, json={"language": "auto"})
    assert reset.status_code == 200 and reset.json()["language"] is None
    assert client.patch("/api/users/agent1", headers=agent, json={"language": "en"}).status_code == 403
    missing = client.patch("/api/users/ghost", headers=admin, json={"language": "en"})
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "no_such_user"
    again = client.get("/api/users", headers=agent | {"Accept-Language": "zh-CN"})
    assert again.json()["detail"]["message"] == "角色 agent 无权执行此操作（允许的角色：admin）"


def test_console_speaks_the_users_language_and_remembers_it_for_sign_in(client: TestClient) -> None:
    console_login(client, "agent1")
    page = client.get("/console/settings", headers={"Accept-Language": "en"}).text
    assert '<html lang="en">' in page and "My settings" in page
    saved = client.post("/console/settings", data={"language": "zh-CN"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.cookies.get("warmline_lang") == "zh-CN"
    after = client.get("/console/settings?saved=1", headers={"Accept-Language": "en"}).text
    assert '<html lang="zh-CN">' in after and "已保存。页面、播报和消息现在使用简体中文。" in after
    bad = client.post("/console/settings", data={"language": "klingon"})
    assert bad.status_code == 422 and "语言“klingon”不受支持" in bad.text
    client.post("/logout")
    # Signed out, this browser still shows the sign-in page in the language its user chose.
    assert '<html lang="zh-CN">' in client.get("/login", headers={"Accept-Language": "en"}).text
