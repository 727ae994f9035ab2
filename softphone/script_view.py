"""The call script's HTML, checked again on the agent's PC before the page shows it.

The server renders scripts to safe HTML already (dialer.scripts); the phone keeps only the few
tags a script uses, with no attributes at all, and escapes all text, so even a server that had been
tampered with could not put a script, a link or a form into the agent's page.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

ALLOWED = frozenset(
    {"h2", "h3", "p", "ul", "ol", "li", "strong", "em", "code", "pre", "blockquote", "br", "hr"}
)
VOID = frozenset({"br", "hr"})
DROPPED_WITH_TEXT = frozenset({"script", "style", "template", "iframe", "object", "svg", "math"})


class _Clean(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_TEXT:
            self.skipping += 1
        elif not self.skipping and tag in ALLOWED:
            self.out.append(f"<{tag}>")
            if tag not in VOID:
                self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_TEXT:
            self.skipping = max(0, self.skipping - 1)
        elif not self.skipping and tag in self.open:
            while self.open:
                last = self.open.pop()
                self.out.append(f"</{last}>")
                if last == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(escape(data, quote=False))


def clean_script_html(html: str) -> str:
    """Only the script tags (h2, h3, p, lists, emphasis, code, quotes), no attributes, text escaped."""
    parser = _Clean()
    parser.feed(html or "")
    parser.close()
    parser.out.extend(f"</{tag}>" for tag in reversed(parser.open))
    return "".join(parser.out)
