"""A real service under uvicorn and Debian's Chromium driven by Playwright (no downloaded browser).

Every wait is on a condition the page shows (text, focus, an attribute), never on the clock. The
deadlines are generous because they are only a safety net: a busy machine (a CPU-heavy job beside
the tests, three test files at once) must slow the tests down, not fail them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.db import Database
from core.settings import Settings
from tests.utils import free_port
from tests.utils.live_server import SERVER_START_S, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Playwright's 5 s default for `expect` and 30 s for actions assume an idle machine.
EXPECT_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 60_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

__all__ = ["SERVER_START_S", "LiveServer", "free_port", "new_page", "wait_in_page", "wait_phone_ready"]


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    with LiveServer(settings, db) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module. Playwright's sync API keeps an event loop running in this thread
    while it lives, so it must not outlive the module: `asyncio.run` elsewhere would fail."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run `make test`, which installs it")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=ACTION_TIMEOUT_MS
        )
        yield b
        b.close()


# The browser's language (navigator.language, Accept-Language): a Chinese agent's by default. A
# test written against the English pages asks for an English browser with
# `@pytest.mark.browser_locale("en-US")` (module: `pytestmark = ...`).
DEFAULT_LOCALE = "zh-CN"


def new_page(browser: Browser, locale: str = DEFAULT_LOCALE) -> Page:
    """A page in a fresh browser context (close it with `page.context.close()`), with deadlines
    fit for a busy machine, in a browser set to `locale`."""
    context = browser.new_context(locale=locale)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    return context.new_page()


def wait_phone_ready(page: Page) -> None:
    """The softphone page marks <html data-ready="true"> once its key map is loaded and its live
    link to the phone has delivered the first view; keys pressed before that would be lost."""
    expect(page.locator("html")).to_have_attribute("data-ready", "true")


def wait_in_page(page: Page, expression: str, timeout_ms: float = EXPECT_TIMEOUT_MS) -> None:
    """Wait until a JavaScript expression is true in the page. Not `page.wait_for_function`: that
    evaluates its text inside the page, which the console's Content-Security-Policy forbids (no
    eval); `page.evaluate` goes through the browser's debugging protocol, which the policy does
    not govern. Polled on the page's own frames, never a fixed sleep."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms / 1000:.0f} s: {expression}")
        page.evaluate("new Promise(requestAnimationFrame)")


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page; the test fails if anything on it broke the Content-Security-Policy (an inline
    script or style, an eval, a foreign source): the console's pages must work under it."""
    marker = request.node.get_closest_marker("browser_locale")
    pg = new_page(browser, marker.args[0] if marker else DEFAULT_LOCALE)
    violations: list[str] = []
    pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    pg.context.close()
    assert violations == [], "the page broke its Content-Security-Policy"
