"""Runs an IVR flow on one answered channel through ARI, fed events by the dispatcher.

The runner never opens the event stream itself (ARI allows one per application): it reads the
call's events from an ``EventSource`` -- the dispatcher's per-call queue (core.ari_events) or any
object with ``async get()``. It returns a :class:`FlowResult` and, whatever happens (the callee
hangs up, Asterisk errs, the task is cancelled), leaves no playback or recording running and no
channel up -- except after a ``transfer`` node, where the call is deliberately handed, live and
still in Stasis, to whoever acts on ``result.transfer`` (the dialer's agent routing).

Events left in the queue after ``run_flow`` returns (StasisEnd, ChannelDestroyed with its cause)
stay there for the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from core.ari import HANDED_OVER, RECONNECTED, AriError
from core.ari_events import HANGUP_EVENTS, event_ids
from ivr.flow import (
    BranchNode,
    Flow,
    GatherNode,
    HangupNode,
    PlayNode,
    Prompt,
    RecordNode,
    SetOutcomeNode,
    TransferNode,
    is_personal,
    render,
    resolve_prompt_file,
)
from ivr.tts import PromptCache, TtsError, media_uri, wav_seconds

log = logging.getLogger(__name__)

JSON = dict[str, Any]
PLAY_SLACK = 15.0  # seconds a playback may run past its audio length before it is stopped
RECORD_SLACK = 10.0


class AriLike(Protocol):
    """The part of core.ari.AriClient the runner uses (a fake in unit tests)."""

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        playback_id: str | None = None,
        *,
        lang: str | None = None,
    ) -> JSON: ...

    async def stop_playback(self, playback_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def answer(self, channel_id: str) -> None: ...

    async def get_channel(self, channel_id: str) -> JSON: ...

    async def get_playback(self, playback_id: str) -> JSON: ...

    async def record_channel(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration: int = 0,
        if_exists: str = "fail",
        beep: bool = False,
        max_silence: int = 0,
        terminate_on: str = "none",
    ) -> JSON: ...

    async def stop_recording(self, name: str) -> None: ...


class EventSource(Protocol):
    async def get(self) -> JSON: ...


class TransferRequest(BaseModel):
    """Connect this call to an agent with ``skill`` (and ``queue`` if named); the call is up."""

    skill: str
    queue: str | None = None
    priority: int = 0
    language: str | None = None
    node: str


class GatherInput(BaseModel):
    node: str
    status: Literal["ok", "no_input", "invalid"]
    entry: str = ""


class FlowResult(BaseModel):
    flow: str
    channel_id: str
    outcome: str | None = None
    escalate: bool = False
    path: list[str] = Field(default_factory=list, description="nodes visited, in order")
    digits: dict[str, str] = Field(default_factory=dict, description="gather node -> accepted entry")
    inputs: list[GatherInput] = Field(default_factory=list, description="every gather attempt")
    keys: str = Field(default="", description="every key the callee pressed, in order")
    recording: str | None = Field(default=None, description="ARI stored recording name")
    recording_path: Path | None = None
    transfer: TransferRequest | None = None
    ended: Literal["hangup", "transfer", "callee_hangup", "error"] = "error"
    hangup_by: Literal["callee", "flow"] | None = None
    hangup_cause: int | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    first_audio_after: float | None = Field(default=None, description="seconds from start to first audio")


class _CalleeGone(Exception):
    def __init__(self, cause: int | None = None) -> None:
        super().__init__("callee hung up")
        self.cause = cause


class FlowRuntimeError(RuntimeError):
    pass


class _Run:
    def __init__(
        self,
        ari: AriLike,
        channel_id: str,
        flow: Flow,
        fields: Mapping[str, object],
        events: EventSource,
        prompts: PromptCache,
        *,
        recordings_dir: Path | None,
        prompt_dirs: tuple[Path, ...],
        answer: bool,
        prefetch: tuple[str, ...] | None = None,
    ) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.flow = flow
        self.events = events
        self.prompts = prompts
        self.recordings_dir = recordings_dir
        self.prompt_dirs = prompt_dirs
        self.answer = answer
        self.vars: dict[str, str] = {k: "" if v is None else str(v) for k, v in fields.items()}
        self.result = FlowResult(flow=flow.name, channel_id=channel_id)
        self.visits: Counter[str] = Counter()
        self._playback: str | None = None
        self._recording: str | None = None
        self._gone = False
        # The caller hung up to end a message ("说完请挂机"): the flow still books what follows the
        # record node (set_outcome, branch), then ends as a callee hang-up.
        self._left_after_message: _CalleeGone | None = None
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._prefetch: list[asyncio.Task[Any]] = []
        # The prompt texts (`say`, as written) made ahead for this call; None: every one of the flow.
        self._ahead = prefetch

    # ------------------------------------------------------------ the run

    async def run(self) -> FlowResult:
        started = time.perf_counter()
        try:
            self._start_prefetch()
            if self.answer:
                await self._ari_call(self.ari.answer(self.channel_id))
            await self._walk()
            if self.result.ended == "error":
                self.result.error = (
                    f"the flow stopped at {self.result.path[-1:]} without a hangup or transfer"
                )
        except _CalleeGone as gone:
            self._gone = True
            self.result.ended = "callee_hangup"
            self.result.hangup_by = "callee"
            if gone.cause is not None:
                self.result.hangup_cause = gone.cause
        except asyncio.CancelledError as exc:
            if exc.args[:1] == (HANDED_OVER,):  # another worker follows the call now: left as it is
                self._gone = True
            raise
        except Exception as exc:
            log.exception("IVR flow %s on %s failed", self.flow.name, self.channel_id)
            self.result.ended = "error"
            self.result.error = f"{type(exc).__name__}: {exc}"
        finally:
            await self._cleanup()
            self.result.seconds = round(time.perf_counter() - started, 3)
        return self.result

    async def _walk(self) -> None:
        node_id: str | None = self.flow.start
        steps = 0
        while node_id is not None:
            steps += 1
            if steps > self.flow.max_steps:
                raise FlowRuntimeError(
                    f"more than {self.flow.max_steps} steps (a loop?); stopped at {node_id}"
                )
            node = self.flow.nodes.get(node_id)
            if node is None:
                raise FlowRuntimeError(f"unknown node {node_id!r} (run `warmline ivr check` on the flow)")
            if self._left_after_message is not None and not isinstance(node, SetOutcomeNode | BranchNode):
                raise self._left_after_message
            self.visits[node_id] += 1
            if node.max_visits is not None and self.visits[node_id] > node.max_visits:
                node_id = node.over_limit
                continue
            self.result.path.append(node_id)
            node_id = await self._node(node)

    async def _node(self, node: Any) -> str | None:
        if isinstance(node, PlayNode):
            media = await self._media(node.prompt)
            if node.repeat > 1 and media:
                gap = [(media_uri(await self.prompts.silence(node.gap)), node.gap)] if node.gap > 0 else []
                media = (media + gap) * (node.repeat - 1) + media
            await self._play(media)
            return node.next
        if isinstance(node, GatherNode):
            return await self._gather(node)
        if isinstance(node, BranchNode):
            value = self.vars.get(node.field, "")
            return node.cases.get(value, node.default)
        if isinstance(node, SetOutcomeNode):
            self.result.outcome = node.outcome
            self.result.escalate = node.escalate
            self.vars["outcome"] = node.outcome
            return node.next
        if isinstance(node, RecordNode):
            await self._record(node)
            return node.next
        if isinstance(node, TransferNode):
            if node.prompt is not None:
                await self._play(await self._media(node.prompt))
            self.result.transfer = TransferRequest(
                skill=node.skill,
                queue=node.queue,
                priority=node.priority,
                language=node.language,
                node=node.id,
            )
            self.result.ended = "transfer"
            return None
        if isinstance(node, HangupNode):
            if node.prompt is not None:
                await self._play(await self._media(node.prompt))
            await self._hangup()
            return None
        raise FlowRuntimeError(f"node type {type(node).__name__} is not supported")

    # ------------------------------------------------------------ prompts

    def _text(self, prompt: Prompt) -> str:
        text, missing = render(prompt.say or "", self.vars)
        for name in missing:
            warning = f"field {{{name}}} has no value for this contact"
            if warning not in self.result.warnings:
                self.result.warnings.append(warning)
        return text

    def _start_prefetch(self) -> None:
        """Render every prompt of the flow for this contact now, so later nodes never wait (only
        those of `prefetch` when the caller prepared the others: FlowRunner.run)."""
        for _node_id, _where, prompt in self.flow.all_prompts():
            if prompt.say is not None and (self._ahead is None or prompt.say in self._ahead):
                text = self._text(prompt)
                if text.strip():
                    spoken = self.prompts.speak(text, self.flow.voice, personal=is_personal(prompt.say))
                    self._prefetch.append(asyncio.ensure_future(spoken))
        for task in self._prefetch:
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures surface on use

    async def _media(self, prompt: Prompt) -> list[tuple[str, float]]:
        if prompt.file is not None:
            source = resolve_prompt_file(prompt.file, self.flow.base_dir, self.prompt_dirs)
            if source is None:
                self.result.warnings.append(f"prompt file {prompt.file} not found; skipped")
                return []
            path = await self.prompts.file(source)
        else:
            text = self._text(prompt)
            if not text.strip():
                self.result.warnings.append("a prompt rendered to empty text; skipped")
                return []
            try:
                path = await self.prompts.speak(text, self.flow.voice, personal=is_personal(prompt.say))
            except TtsError as exc:
                self.result.warnings.append(f"TTS failed, prompt skipped: {exc}")
                return []
        return [(media_uri(path), wav_seconds(path))]

    # ------------------------------------------------------------ events

    async def _ari_call(self, call: Any) -> Any:
        """Await an ARI request; a 404/409 because the channel is gone means the callee hung up."""
        try:
            return await call
        except AriError as exc:
            if exc.status in (404, 409, 422) and not await self._alive():
                raise _CalleeGone() from exc
            raise

    async def _alive(self) -> bool:
        try:
            await self.ari.get_channel(self.channel_id)
        except AriError as exc:
            if exc.status == 404:
                self._gone = True
                return False
            return True
        return True

    async def _next(self, deadline: float) -> JSON | None:
        """The next event about this call, or None once ``deadline`` (loop time) has passed.
        Raises _CalleeGone when the channel hangs up."""
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    event = await self.events.get()
            except TimeoutError:
                return None
            kind = event.get("type")
            if kind == RECONNECTED:
                if not await self._alive():
                    raise _CalleeGone()
                return event
            if self.channel_id not in event_ids(event):
                continue
            if kind in HANGUP_EVENTS and event.get("channel", {}).get("id") == self.channel_id:
                cause = event.get("cause")
                raise _CalleeGone(int(cause) if isinstance(cause, int) else None)
            if kind == "ChannelDtmfReceived":
                self.result.keys += str(event.get("digit", ""))
            return event

    def _mine(self, event: JSON, kind: str, key: str, name: str | None) -> bool:
        return (
            event.get("type") == kind
            and name is not None
            and event.get(key, {}).get("id" if key == "playback" else "name") == name
        )

    # ------------------------------------------------------------ playing

    async def _play(self, media: list[tuple[str, float]], barge: set[str] | None = None) -> str | None:
        """Play media to its end; returns the digit that barged in (and stopped it), if any."""
        if not media:
            return None
        playback_id = f"ivr-{uuid.uuid4().hex}"
        self._playback = playback_id
        try:
            await self._ari_call(
                self.ari.play(self.channel_id, [m for m, _ in media], playback_id=playback_id)
            )
        except BaseException:
            self._playback = None
            raise
        deadline = self._loop.time() + sum(s for _, s in media) + PLAY_SLACK
        while True:
            event = await self._next(deadline)
            if event is None:
                self.result.warnings.append(f"playback {playback_id} did not finish in time; stopped")
                await self._stop_playback()
                return None
            kind = event.get("type")
            if kind == RECONNECTED:
                if not await self._playback_alive(playback_id):
                    self._playback = None
                    return None
            elif self._mine(event, "PlaybackStarted", "playback", playback_id):
                if self.result.first_audio_after is None:
                    self.result.first_audio_after = round(self._loop.time() - self._t0, 3)
            elif self._mine(event, "PlaybackFinished", "playback", playback_id):
                self._playback = None
                if event["playback"].get("state") == "failed":
                    self.result.warnings.append(
                        f"Asterisk could not play {event['playback'].get('media_uri')}"
                    )
                return None
            elif kind == "ChannelDtmfReceived" and barge is not None:
                digit = str(event.get("digit", ""))
                if digit in barge:
                    await self._stop_playback()
                    return digit

    async def _playback_alive(self, playback_id: str) -> bool:
        try:
            await self.ari.get_playback(playback_id)
        except AriError as exc:
            return exc.status != 404
        return True

    async def _stop_playback(self) -> None:
        playback_id, self._playback = self._playback, None
        if playback_id is not None:
            with contextlib.suppress(AriError):
                await self.ari.stop_playback(playback_id)

    # ------------------------------------------------------------ gathering

    async def _gather(self, node: GatherNode) -> str | None:
        entries = node.valid_entries()
        first_keys = {e[0] for e in entries}
        prompt = await self._media(node.prompt)
        lead: list[tuple[str, float]] = []
        tries = 0
        while True:
            tries += 1
            digit = await self._play(lead + prompt, barge=first_keys)
            status, entry = await self._collect(node, entries, digit or "")
            self.result.inputs.append(GatherInput(node=node.id, status=status, entry=entry))
            if status == "ok":
                self.result.digits[node.id] = entry
                self.vars[f"input.{node.id}"] = entry
                self.vars["last_input"] = entry
                return node.target_for(entry)
            if tries > node.retries:
                return node.no_input if status == "no_input" else (node.invalid or node.no_input)
            again = node.no_input_prompt if status == "no_input" else node.invalid_prompt
            lead = await self._media(again) if again is not None else []

    async def _collect(
        self, node: GatherNode, entries: list[str], entry: str
    ) -> tuple[Literal["ok", "no_input", "invalid"], str]:
        deadline = self._loop.time() + (node.inter_digit_timeout if entry else node.timeout)
        while True:
            if entry:
                if not any(e.startswith(entry) for e in entries):
                    return "invalid", entry
                longer = any(e != entry and e.startswith(entry) for e in entries)
                if entry in entries and (not longer or len(entry) >= node.max_digits):
                    return "ok", entry
            event = await self._next(deadline)
            if event is None:
                if not entry:
                    return "no_input", ""
                return ("ok", entry) if entry in entries else ("invalid", entry)
            if event.get("type") != "ChannelDtmfReceived":
                continue
            digit = str(event.get("digit", ""))
            if node.terminator is not None and digit == node.terminator:
                return ("ok", entry) if entry in entries else ("invalid", entry or digit)
            entry += digit
            deadline = self._loop.time() + node.inter_digit_timeout

    # ------------------------------------------------------------ recording

    async def _record(self, node: RecordNode) -> None:
        if node.prompt is not None:
            await self._play(await self._media(node.prompt))
        name = f"ivr-{uuid.uuid4().hex}"
        await self._ari_call(
            self.ari.record_channel(
                self.channel_id,
                name,
                max_duration=node.max_seconds,
                max_silence=node.silence_end or 0,
                beep=node.beep,
                terminate_on=node.terminate_on,
            )
        )
        self._recording = name
        self.result.recording = name
        if self.recordings_dir is not None:
            self.result.recording_path = self.recordings_dir / f"{name}.wav"
        deadline = self._loop.time() + node.max_seconds + RECORD_SLACK
        while True:
            try:
                event = await self._next(deadline)
            except _CalleeGone as gone:  # hanging up ends the message; what was recorded is kept
                self._recording = None
                self._left_after_message = gone
                return
            if event is None:
                self.result.warnings.append(f"recording {name} did not finish in time; stopped")
                await self._stop_recording()
                return
            if self._mine(event, "RecordingFinished", "recording", name):
                self._recording = None
                return
            if self._mine(event, "RecordingFailed", "recording", name):
                self._recording = None
                self.result.warnings.append(f"recording failed: {event['recording'].get('cause', '')}")
                self.result.recording = None
                self.result.recording_path = None
                return

    async def _stop_recording(self) -> None:
        name, self._recording = self._recording, None
        if name is not None:
            with contextlib.suppress(AriError):
                await self.ari.stop_recording(name)

    # ------------------------------------------------------------ ending

    async def _hangup(self) -> None:
        try:
            await self.ari.hangup(self.channel_id)
        except AriError as exc:
            if exc.status == 404:
                raise _CalleeGone() from exc
            raise
        self.result.ended = "hangup"
        self.result.hangup_by = "flow"

    async def _cleanup(self) -> None:
        for task in self._prefetch:
            task.cancel()
        if self._playback is not None and not self._gone:
            await self._stop_playback()
        if self._recording is not None and not self._gone:
            await self._stop_recording()
        if self.result.ended in ("error",) and not self._gone:
            # Never leave a call up that nobody drives. Cancellation (BaseException) lands here too.
            with contextlib.suppress(AriError):
                await self.ari.hangup(self.channel_id)
                self.result.hangup_by = "flow"


async def run_flow(
    ari: AriLike,
    channel_id: str,
    flow: Flow,
    contact_fields: Mapping[str, object],
    events: EventSource,
    *,
    prompts: PromptCache | None = None,
    recordings_dir: Path | None = None,
    prompt_dirs: Sequence[Path] = (),
    answer: bool = False,
    prefetch: tuple[str, ...] | None = None,
) -> FlowResult:
    """Run ``flow`` on the channel (already in Stasis) until it hangs up, transfers or the callee
    hangs up. ``events`` yields this call's ARI events (EventDispatcher.subscribe). With
    ``answer`` the runner answers the channel first (inbound calls). ``prompts`` defaults to the
    cache under the settings' var dir. ``prefetch``: the prompt texts to make ahead as the flow
    starts (None: all of them; the others are made, or found, when played)."""
    if prompts is None:
        from core.settings import get_settings

        prompts = PromptCache.for_settings(get_settings(), voice=flow.voice)
    run = _Run(
        ari,
        channel_id,
        flow,
        contact_fields,
        events,
        prompts,
        recordings_dir=recordings_dir,
        prompt_dirs=tuple(prompt_dirs),
        answer=answer,
        prefetch=prefetch,
    )
    return await run.run()


async def prepare_prompts(
    flow: Flow,
    contact_fields: Mapping[str, object],
    prompts: PromptCache,
    *,
    prompt_dirs: Sequence[Path] = (),
) -> int:
    """Render every prompt of ``flow`` for one contact ahead of the call (e.g. while it rings);
    returns how many prompts the flow has. Cached, so calling it twice costs nothing."""
    fields = {k: "" if v is None else str(v) for k, v in contact_fields.items()}
    jobs = []
    for _node_id, _where, prompt in flow.all_prompts():
        if prompt.say is not None:
            text, _missing = render(prompt.say, fields)
            if text.strip():
                jobs.append(prompts.speak(text, flow.voice, personal=is_personal(prompt.say)))
        elif prompt.file is not None:
            source = resolve_prompt_file(prompt.file, flow.base_dir, tuple(prompt_dirs))
            if source is not None:
                jobs.append(prompts.file(source))
    await asyncio.gather(*jobs)
    return len(jobs)


PREPARED_FLOWS = 64  # flows a runner remembers as prepared (a campaign's edit makes a new one)


class FlowRunner:
    """A runner bound to one ARI client and prompt cache: what the dialer keeps."""

    def __init__(
        self,
        ari: AriLike,
        prompts: PromptCache,
        *,
        recordings_dir: Path | None = None,
        prompt_dirs: Sequence[Path] = (),
    ) -> None:
        self.ari = ari
        self.prompts = prompts
        self.recordings_dir = recordings_dir
        self.prompt_dirs = tuple(prompt_dirs)
        # id(flow) -> (the flow, its personal texts, its prompt count), once its prompts were made
        self._prepared: dict[int, tuple[Flow, tuple[str, ...], int]] = {}

    async def prepare(self, flow: Flow, contact_fields: Mapping[str, object]) -> int:
        """`prepare_prompts`, the first time for a flow; then only its personal prompts (those
        with a contact's fields) are rendered: the others were made, and the flow's own play
        still makes one that went missing since."""
        known = self._prepared.get(id(flow))
        if known is None or known[0] is not flow:
            count = await prepare_prompts(flow, contact_fields, self.prompts, prompt_dirs=self.prompt_dirs)
            personal = tuple(
                p.say for _, _, p in flow.all_prompts() if p.say is not None and is_personal(p.say)
            )
            if len(self._prepared) >= PREPARED_FLOWS:
                self._prepared.clear()
            self._prepared[id(flow)] = (flow, personal, count)
            return count
        _, personal, count = known
        fields = {k: "" if v is None else str(v) for k, v in contact_fields.items()}
        texts = [render(say, fields)[0] for say in personal]
        await asyncio.gather(*(self.prompts.speak(t, flow.voice, personal=True) for t in texts if t.strip()))
        return count

    async def run(
        self,
        channel_id: str,
        flow: Flow,
        contact_fields: Mapping[str, object],
        events: EventSource,
        *,
        answer: bool = False,
    ) -> FlowResult:
        return await run_flow(
            self.ari,
            channel_id,
            flow,
            contact_fields,
            events,
            prompts=self.prompts,
            recordings_dir=self.recordings_dir,
            prompt_dirs=self.prompt_dirs,
            answer=answer,
            prefetch=self._ahead(flow),
        )

    def _ahead(self, flow: Flow) -> tuple[str, ...] | None:
        """What a run of `flow` makes ahead: once this runner prepared the flow (its prompts made
        once for all, `prepare`), only its personal prompts -- a contact's own words; the others
        are cache hits, and a play still makes one gone missing since. Not prepared: all of them.
        (Each call made every prompt of the flow ahead, nine cache look-ups and tasks for the
        vaccination reminder, to play two: issue 13, Round 7.)"""
        known = self._prepared.get(id(flow))
        if known is None or known[0] is not flow:
            return None
        return known[1]
