"""A bound on request bodies, checked before anything is read into memory or onto disk.

Starlette spools an uploaded file to a temporary file whatever its size, before a route sees it; a
route's own size check then comes after the disk has filled. This ASGI middleware refuses a body
over ``Settings.max_request_mb`` first: from its Content-Length at once, or, for a body sent in
chunks without one, as soon as the bytes received pass the bound. The refusal is the API's error
shape (core.errors), 413 with code ``too_large`` and a message in the requester's language.
"""

from __future__ import annotations

import html
import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.i18n import N_, from_accept_language, translate

MESSAGE = N_("the request is larger than {most} MiB; nothing of it was kept")


CONSOLE = "/console"


class BodyTooLarge(HTTPException):
    """Raised from the body's reader: an HTTPException, so the route's body parsing passes it on
    as it is (FastAPI turns other errors there into a 400)."""

    def __init__(self, detail: dict[str, str]) -> None:
        super().__init__(413, detail)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0
        started = over = replaced = False
        page = str(scope.get("path", "")).startswith(CONSOLE)

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge(self._detail(scope))
            return message

        async def watched(message: Message) -> None:
            nonlocal started, replaced
            if over and page:  # the API's JSON answer to the refusal becomes a page for a person
                if not replaced:
                    replaced = True
                    await self._refuse(scope, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    def _detail(self, scope: Scope) -> dict[str, str]:
        language = from_accept_language(_header(scope, b"accept-language"))
        return {"code": "too_large", "message": translate(language, MESSAGE, most=self.max_bytes >> 20)}

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = self._detail(scope)
        if str(scope.get("path", "")).startswith(CONSOLE):
            # A person at the console's upload form: a page that says why, read out at once.
            lang = html.escape(from_accept_language(_header(scope, b"accept-language")).replace("_", "-"))
            text = html.escape(detail["message"])
            body = (
                f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{text}</title></head>'
                f'<body><main><p role="alert">{text}</p></main></body></html>'
            ).encode()
            kind = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
            kind = b"application/json"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    value: bytes = dict(scope.get("headers") or []).get(name, b"")
    return value.decode("latin-1")
