"""Call scripts (话术): Markdown per campaign or inbound line, with the contact's fields filled in,
rendered to HTML that is safe to put in the agent's page.

    # 开场白
    {姓名}您好，我是{agent}，{社区}社区的工作人员。

``{name}`` is replaced by the contact's field of that name -- a list column under its header text,
Chinese or not (``{姓名}``, ``{社区}``) -- and by ``name``/``姓名`` (the contact's name), ``phone``/
``电话`` (masked), ``campaign``, ``line``, ``agent``. ``{{`` and ``}}`` are literal braces. A field the
contact does not have is shown as ``[姓名?]`` and listed in ``missing``, so the agent sees the gap
instead of a hole in a sentence.

Safety: raw HTML, links and images are not Markdown here (they come out as text); every value is
escaped by the renderer, and a value is inserted with its Markdown punctuation escaped, so a list
cell cannot turn into markup. Headings are moved down for the page: ``#`` becomes ``h2`` and
``##`` or deeper ``h3``, so a screen reader user jumps between the script's parts by heading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt

from core.i18n import _
from core.phones import mask_in_text

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}\n]{1,64})\}")
MAX_SCRIPT = 20_000  # characters of Markdown
# Backslash-escapable in CommonMark: every ASCII punctuation character.
_MD_PUNCT = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
ALIASES = {"姓名": "name", "电话": "phone", "号码": "phone"}
# Filled from the call itself, not from the list's columns.
BUILTINS = frozenset({"name", "phone", "campaign", "line", "agent", *ALIASES})


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["html_inline", "html_block", "link", "image", "autolink", "reference"])

    def heading_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        level = min(3, int(tokens[idx].tag[1]) + 1)
        return f"<h{level}>"

    def heading_close(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        level = min(3, int(tokens[idx].tag[1]) + 1)
        return f"</h{level}>\n"

    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("heading_close", heading_close)
    return md


_MD = _markdown()


@dataclass
class RenderedScript:
    html: str
    used: list[str] = field(default_factory=list)  # placeholders the script names, in order
    missing: list[str] = field(default_factory=list)  # those the call had no value for


def placeholders(markdown: str) -> list[str]:
    """The field names a script uses, in order of first use."""
    seen: dict[str, None] = {}
    for m in PLACEHOLDER.finditer(markdown or ""):
        if m.group(1):
            seen.setdefault(m.group(1).strip())
    return list(seen)


def pop_fields(script: str | None, screen_pop: list[str] | None) -> list[str]:
    """The list columns that go with a call to the agent's screen: those `screen_pop` names and
    those the script uses -- never all of them."""
    named = [*(screen_pop or []), *placeholders(script or "")]
    return [f for f in dict.fromkeys(named) if f not in BUILTINS]


def _escape_markdown(value: str) -> str:
    """A value as literal text inside Markdown: one line, punctuation escaped."""
    return _MD_PUNCT.sub(r"\\\1", " ".join(value.split()))


def fill(markdown: str, values: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """The Markdown with its placeholders replaced; (text, used, missing)."""
    used: dict[str, None] = {}
    missing: dict[str, None] = {}

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "\\{"
        if m.group(0) == "}}":
            return "\\}"
        name = m.group(1).strip()
        used.setdefault(name)
        value = values.get(name)
        if value is None and name in ALIASES:
            value = values.get(ALIASES[name])
        if value is None or value == "":
            missing.setdefault(name)
            return _escape_markdown(f"[{name}?]")
        return _escape_markdown(value)

    return PLACEHOLDER.sub(sub, markdown), list(used), list(missing)


def render_script(markdown: str, values: Mapping[str, Any]) -> RenderedScript:
    """The script as safe HTML with `values` filled in (phone numbers in them masked)."""
    texts = {str(k): mask_in_text(str(v)) for k, v in values.items() if v is not None}
    text, used, missing = fill(markdown or "", texts)
    return RenderedScript(html=_MD.render(text), used=used, missing=missing)


def check_script(markdown: str) -> str:
    """A script as given in settings, or ValueError saying why it cannot be one."""
    if len(markdown) > MAX_SCRIPT:
        raise ValueError(_("at most {most} characters (this one has {n})", most=MAX_SCRIPT, n=len(markdown)))
    return markdown
