"""What every answer of the service carries for the browser's safety, and the admin-only API docs.

- Security headers on every response: a strict Content-Security-Policy (scripts, styles, images,
  audio and requests only from this origin; no inline script, no framing, forms post only here),
  nosniff, no referrer beyond this origin, no cross-origin window handles, no camera or
  microphone for the console; HSTS when the browser came over HTTPS (directly or through a trusted
  proxy); `Cache-Control: no-store` on the API and the console's pages (personal data stays out
  of shared and browser caches). A route that sets its own policy (the API docs) keeps it.
- A console session whose token this request rotated (core.auth.sessions) gets its new cookie here,
  whatever Response the route answered with.
- `/docs` and `/openapi.json` for administrators only: the map of every route is an attacker's
  first read.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.auth.models import Role, User
from core.deps import Roles, set_session_cookies

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"
NO_STORE_PREFIXES = ("/api/", "/console", "/login", "/docs", "/openapi.json", "/healthz")


class SecurityHeaders:
    """ASGI middleware; inside the proxy-headers one, so the scheme it reads is the browser's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add(scope, MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _add(scope: Scope, headers: MutableHeaders) -> None:
        for name, value in HEADERS.items():
            headers.setdefault(name, value)
        if scope.get("scheme") == "https":
            headers.setdefault("strict-transport-security", HSTS)
        if str(scope.get("path", "")).startswith(NO_STORE_PREFIXES):
            headers.setdefault("cache-control", "no-store")
        rotated = scope.get("state", {}).get("rotated_token")
        if rotated:
            token, max_age = rotated
            carrier = Response()
            set_session_cookies(carrier, Request(scope), token, max_age)
            for raw_name, raw_value in carrier.raw_headers:
                if raw_name == b"set-cookie":
                    headers.append("set-cookie", raw_value.decode("latin-1"))


ADMIN = Roles(Role.admin)
ADMIN_PAGE = Roles(Role.admin, page=True)


def add_admin_docs(app: FastAPI) -> None:
    """The OpenAPI document and Swagger UI, behind the admin role (the app is made without them)."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Annotated[User, Depends(ADMIN)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(_: Annotated[User, Depends(ADMIN_PAGE)]) -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")
        page.headers["content-security-policy"] = _docs_policy(page.body)
        return page


def _docs_policy(body: bytes | Any) -> str:
    """Swagger UI's own page: its scripts and styles from its CDN, its one inline script by hash."""
    inline = re.findall(rb"<script>(.*?)</script>", bytes(body), re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline)
    cdn = "https://cdn.jsdelivr.net"
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {cdn} {hashes}",
            f"style-src 'self' {cdn}",
            "img-src 'self' data: https://fastapi.tiangolo.com",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
