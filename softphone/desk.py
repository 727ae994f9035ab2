"""The desk: the phone from any window — global hot keys in, the phone's announcements spoken out.

ARIA live regions speak only in the focused page, and the page's F2 works only there; an agent
spends the day in other windows. The desk follows the phone's announcements (as the stdout
follower in softphone/runner.py does) and, while no phone page has the focus, speaks each through
the agent's screen reader (`softphone.speech`); its global keys (`softphone.hotkeys`) run the
phone's own actions, so a key pressed anywhere does exactly what the page's key does. The page
tells the desk when it gains or loses the focus (`POST /api/page-focus`), so nothing is said twice.
Sound cues stay with the page, which plays them focused or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.i18n import _, current_locale
from softphone.hotkeys import HotkeyBackend, HotkeyUnavailable, Refusal
from softphone.hotkeys.keys import KeySpec, action_label
from softphone.phone import ActionError, Announcement, Softphone
from softphone.speech import SpeechOutput

log = logging.getLogger(__name__)


@dataclass
class PageFocus:
    """Whether a phone page has the keyboard focus now (as the page reports it)."""

    focused: bool = False
    pages: int = 0  # pages with a live event stream open

    def page_opened(self) -> None:
        self.pages += 1

    def page_closed(self) -> None:
        self.pages = max(0, self.pages - 1)
        if self.pages == 0:
            self.focused = False  # a page that went away without saying so has no focus


@dataclass
class Desk:
    phone: Softphone
    keys: Mapping[str, KeySpec] = field(default_factory=dict)
    backend: HotkeyBackend | None = None
    speech: SpeechOutput | None = None
    focus: PageFocus = field(default_factory=PageFocus)
    active: dict[str, KeySpec] = field(default_factory=dict)  # keys the desktop gave us
    spoken: list[str] = field(default_factory=list)  # what was sent to speech (newest last, 50 kept)
    _loop: asyncio.AbstractEventLoop | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _follower: asyncio.Task[None] | None = None
    _context: contextvars.Context | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        if self.speech is not None:
            self._follower = asyncio.create_task(self._follow(), name="desk-speech")
        if self.keys and self.backend is not None:
            try:
                refused = await asyncio.to_thread(self.backend.start, self.keys, self._pressed)
            except HotkeyUnavailable as exc:
                self.phone.announce(
                    _("Keys from any window are off: {why}", why=str(exc)), "assertive", cue="error"
                )
                return
            self._take(refused)

    def _take(self, refused: list[Refusal]) -> None:
        lost = {r.action for r in refused}
        self.active = {a: k for a, k in self.keys.items() if a not in lost}
        for r in refused:
            self.phone.announce(
                _("The key for “{action}” does not work: {why}", action=action_label(r.action), why=r.reason),
                "assertive",
                cue="error",
            )
        if self.active:
            sep = "；" if current_locale() == "zh_CN" else "; "
            listing = sep.join(f"{k} {action_label(a)}" for a, k in self.active.items())
            self.phone.announce(_("Keys from any window: {keys}.", keys=listing), cue="info")

    async def close(self) -> None:
        if self.backend is not None and self.active:
            await asyncio.to_thread(self.backend.stop)
        for task in [*self._tasks, *([self._follower] if self._follower else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.speech is not None:
            await asyncio.to_thread(self.speech.close)

    # -- keys --------------------------------------------------------------------------------

    def _pressed(self, action: str) -> None:
        """Called on the hot-key thread: run the action on the phone's loop."""
        assert self._loop is not None and self._context is not None
        # In the phone's context (its language), not the key thread's: the task copies the
        # context it is created in.
        self._loop.call_soon_threadsafe(self._spawn, action, context=self._context)

    def _spawn(self, action: str) -> None:
        task = asyncio.create_task(self.press(action), name=f"hotkey-{action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def press(self, action: str) -> None:
        """What a global key does: the phone's own action, its refusal said like the page says it."""
        log.info("hot key: %s", action)
        try:
            if action == "repeat":
                self._repeat()
            else:
                await self.phone.act(action)
        except ActionError as exc:
            self.phone.announce(str(exc), "assertive", cue="error")
        except Exception as exc:
            log.exception("hot key %s failed", action)
            self.phone.announce(_("That did not work: {error}", error=exc), "assertive", cue="error")

    def _repeat(self) -> None:
        last = self.phone.announcements[-1] if self.phone.announcements else None
        if last is None:
            self.phone.announce(_("Nothing has been said yet."), cue="info")
            return
        self.phone.announce(last.text, last.politeness, cue=last.cue)

    # -- speech ------------------------------------------------------------------------------

    def spoken_text(self, a: Announcement) -> str:
        """What the screen reader says for `a`: a ring also names the key that answers it anywhere."""
        if a.cue == "ring" and "answer" in self.active:
            return a.text + " " + _("Or press {key} in any window.", key=str(self.active["answer"]))
        return a.text

    async def _follow(self) -> None:
        assert self.speech is not None
        said = 0
        locale = current_locale()
        async for _version in self.phone.changes():
            for a in [a for a in self.phone.announcements if a.id > said]:
                said = a.id
                if self.focus.focused:
                    continue  # the page's live region says it
                text = self.spoken_text(a)
                self.spoken.append(text)
                del self.spoken[:-50]
                await asyncio.to_thread(
                    self.speech.say, text, interrupt=a.politeness == "assertive", language=locale
                )
