"""Sign-in and console sessions through the real app: throttling per account and per address (429
with Retry-After, shared by every process through the database), password bounds before hashing,
CSRF and Origin checks, security headers, Secure cookies behind a trusted proxy, idle timeout and
token rotation. The clock is injected (`create_app(clock=...)`); nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.auth import service
from core.auth.models import Role, SignInThrottle
from core.db import Database
from core.settings import Settings
from tests.utils import PASSWORD, console_login, login
from tests.utils.clock import SettableClock
from warmline.app import create_app

WRONG = "not the password"
EN = {"Accept-Language": "en"}


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def client(settings: Settings, db: Database, clock: SettableClock) -> Iterator[TestClient]:
    settings.signin_address_tries = 8
    with db.session() as s:
        service.create_user(s, "root", Role.admin, PASSWORD, actor="test")
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        service.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
    with TestClient(create_app(settings, db, clock=clock)) as c:
        yield c


def token_try(client: TestClient, name: str, password: str, **headers: str) -> tuple[int, dict[str, str]]:
    resp = client.post("/api/auth/token", json={"username": name, "password": password}, headers=headers)
    return resp.status_code, resp.json().get("detail", {}) | {"retry_after": resp.headers.get("retry-after")}


def test_many_wrong_passwords_then_the_right_one_after_the_wait(
    client: TestClient, clock: SettableClock, db: Database
) -> None:
    codes = [token_try(client, "mei", WRONG)[0] for _ in range(5)]
    assert codes == [401] * 5, "five tries are free"
    status, detail = token_try(client, "mei", WRONG)
    assert status == 429 and detail["code"] == "too_many_attempts" and detail["retry_after"] == "30"
    # Locked: even the right password is refused, before any hashing, and says how long to wait.
    status, detail = token_try(client, "mei", PASSWORD, **EN)
    assert status == 429 and detail["message"] == "too many failed sign-ins: try again in 30 seconds"
    clock.advance(seconds=29)
    assert token_try(client, "mei", PASSWORD)[1]["retry_after"] == "1"
    clock.advance(seconds=1)
    assert token_try(client, "mei", PASSWORD)[0] == 200
    with db.session() as s:
        left = [(r.scope, r.key) for r in s.scalars(select(SignInThrottle))]
    assert left == [("address", "testclient")], "a success clears the account's count, not the address's"


def test_each_failure_past_the_allowance_doubles_the_lock(client: TestClient, clock: SettableClock) -> None:
    for _ in range(5):
        token_try(client, "ghost", WRONG)  # an account that does not exist is counted the same
    waits = []
    for _ in range(3):
        status, detail = token_try(client, "ghost", WRONG)
        assert status == 429
        waits.append(int(detail["retry_after"]))
        clock.advance(seconds=waits[-1])
        assert token_try(client, "ghost", WRONG)[0] == 401, "after the wait, one more try"
    assert waits == [30, 60, 120]


def test_one_address_guessing_many_accounts_is_throttled(client: TestClient, clock: SettableClock) -> None:
    for i in range(8):
        assert token_try(client, f"user{i}", WRONG)[0] == 401
    status, detail = token_try(client, "root", PASSWORD)
    assert status == 429 and detail["code"] == "too_many_attempts", "the address is locked, whatever account"
    clock.advance(minutes=1)
    assert token_try(client, "root", PASSWORD)[0] == 200


def test_the_throttle_holds_across_processes(
    settings: Settings, db: Database, client: TestClient, clock: SettableClock
) -> None:
    """Two apps on one database (as two worker processes of the service, on one wall clock):
    failures counted by one lock the account in the other."""
    for _ in range(5):
        assert token_try(client, "mei", WRONG)[0] == 401
    with TestClient(create_app(settings, db, clock=clock)) as other:
        assert token_try(other, "mei", PASSWORD)[0] == 429


def test_password_bounds_are_checked_before_hashing(client: TestClient, db: Database) -> None:
    status, detail = token_try(client, "mei", "x" * 257, **EN)
    assert status == 422 and detail["code"] == "password_too_long"
    assert detail["message"] == "password too long: at most 256 characters"
    assert token_try(client, "mei", "")[1]["code"] == "credentials_missing"
    assert token_try(client, "m" * 65, PASSWORD)[1]["code"] == "name_too_long"
    with db.session() as s:
        assert s.scalar(select(SignInThrottle)) is None, "malformed tries are refused, not counted"
    chinese = token_try(client, "mei", "x" * 1000)[1]["message"]
    assert chinese == "密码过长：最多 256 个字符"


def test_console_sign_in_is_throttled_too(client: TestClient, clock: SettableClock) -> None:
    for _ in range(5):
        assert client.post("/login", data={"username": "mei", "password": WRONG}).status_code == 401
    page = client.post("/login", data={"username": "mei", "password": PASSWORD})
    assert page.status_code == 429 and page.headers["retry-after"] == "30"
    assert "登录失败次数过多：请在 30 秒后重试" in page.text and 'role="alert"' in page.text
    clock.advance(seconds=30)
    assert console_login(client, "mei").status_code == 303


def test_console_changes_need_the_sessions_csrf_token_and_our_origin(client: TestClient) -> None:
    assert console_login(client, "mei").status_code == 303
    token = client.headers.pop("X-CSRF-Token")
    missing = client.post("/console/settings", data={"language": "en"})
    assert missing.status_code == 403 and missing.json()["detail"]["code"] == "csrf_failed"
    forged = client.post("/console/settings", data={"language": "en", "csrf_token": "guess"})
    assert forged.status_code == 403
    in_form = client.post(
        "/console/settings", data={"language": "en", "csrf_token": token}, follow_redirects=False
    )
    assert in_form.status_code == 303
    in_header = client.patch("/api/me", json={"language": "zh-CN"}, headers={"X-CSRF-Token": token})
    assert in_header.status_code == 200
    elsewhere = client.post(
        "/console/settings",
        data={"language": "en", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["detail"]["code"] == "cross_origin"
    ours = client.post(
        "/console/settings",
        data={"language": "en", "csrf_token": token},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert ours.status_code == 303
    # Sign-in from another site's page is refused too (login CSRF).
    client.cookies.clear()
    foreign_login = client.post(
        "/login", data={"username": "mei", "password": PASSWORD}, headers={"Origin": "null"}
    )
    assert foreign_login.status_code == 403
    # A program with a bearer token is not a browser: no CSRF token needed.
    agent = login(client, "mei")
    assert client.patch("/api/me", json={"language": "en"}, headers=agent).status_code == 200


def test_pages_carry_strict_security_headers_and_forms_carry_the_token(client: TestClient) -> None:
    console_login(client, "boss")
    page = client.get("/console/settings")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in page.headers, "plain HTTP (the lab): no HSTS"
    assert f'name="csrf_token" value="{client.cookies["warmline_csrf"]}"' in page.text


def test_secure_cookies_and_hsts_behind_a_trusted_proxy_only(settings: Settings, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    form = {"username": "mei", "password": PASSWORD}
    with TestClient(create_app(settings, db)) as direct:
        untrusted = direct.post("/login", data=form, headers=https, follow_redirects=False)
        assert "secure" not in untrusted.headers["set-cookie"].lower(), "anyone could send that header"
    settings.trusted_proxies = ["testclient"]  # the TestClient's peer address
    with TestClient(create_app(settings, db)) as proxied:
        resp = proxied.post("/login", data=form, headers=https, follow_redirects=False)
        cookies = resp.headers.get_list("set-cookie")
        assert all("secure" in c.lower() and "samesite=strict" in c.lower() for c in cookies)
        assert any(c.startswith("warmline_token=") and "httponly" in c.lower() for c in cookies)
        assert resp.headers["strict-transport-security"].startswith("max-age=")
        for _ in range(5):
            proxied.post("/api/auth/token", json={"username": "mei", "password": WRONG}, headers=https)
    with db.session() as s:
        keys = {r.key for r in s.scalars(select(SignInThrottle).where(SignInThrottle.scope == "address"))}
    assert keys == {"203.0.113.9"}, "behind the proxy, the client's own address is counted"


def test_an_idle_session_ends(client: TestClient, clock: SettableClock) -> None:
    console_login(client, "mei")
    clock.advance(minutes=29)
    assert client.get("/console", follow_redirects=False).status_code == 200
    clock.advance(minutes=29)
    assert client.get("/console", follow_redirects=False).status_code == 200, "each use restarts the wait"
    clock.advance(minutes=31)
    gone = client.get("/console", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    clock.advance(minutes=1)
    assert client.get("/console", follow_redirects=False).status_code == 303, "and does not come back"


def test_the_session_token_is_rotated_and_the_old_one_retires(
    client: TestClient, clock: SettableClock
) -> None:
    console_login(client, "mei")
    old = client.cookies["warmline_token"]
    csrf = client.cookies["warmline_csrf"]
    clock.advance(minutes=16)
    resp = client.get("/console")
    new = resp.cookies.get("warmline_token")
    assert resp.status_code == 200 and new and new != old
    assert "httponly" in resp.headers["set-cookie"].lower()
    # The CSRF token belongs to the session, not to one token: pages already open keep working.
    saved = client.post(
        "/console/settings", data={"language": "en", "csrf_token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303
    stale = TestClient(client.app, cookies={"warmline_token": old})
    assert stale.get("/console", follow_redirects=False).status_code == 200, "a request already on its way"
    clock.advance(seconds=61)
    assert stale.get("/console", follow_redirects=False).status_code == 303, "then the old token is dead"
    assert client.get("/console", follow_redirects=False).status_code == 200
