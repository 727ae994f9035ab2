"""axe-core checks for every page the tests visit."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

_axe = Axe()


def assert_accessible(page: Page) -> None:
    results = _axe.run(page)
    violations = results.response["violations"]
    summary = [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in violations]
    assert violations == [], f"axe-core violations on {page.url}:\n" + "\n".join(summary)
