"""Errors the API sends back: a stable code for programs and a message for people.

Every error the API raises itself has the shape ``{"detail": {"code": "...", "message": "..."}}``:
`code` is English snake_case and never changes (a client branches on it); `message` says what and
where in the requester's language (`core.i18n`'s current locale, set per request in `core.deps`).
Extra keys a route already sent (``problems``, ``field``, counts) stay beside them. FastAPI's own
422 for a malformed body keeps its list shape (``detail[i].loc`` names the field).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


def http_error(status: int, code: str, message: str, **extra: Any) -> HTTPException:
    """An HTTPException whose detail is ``{"code", "message", **extra}``; raise what it returns."""
    return HTTPException(status, {"code": code, "message": message, **extra})


class CodedError(ValueError):
    """A domain error a person caused, with its stable code; ``str()`` is the message, already in
    the current locale (raise it with ``_()``)."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)
