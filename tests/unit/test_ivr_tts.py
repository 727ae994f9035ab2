"""Prompts: espeak-ng Mandarin, the content-hash cache, atomic writes, 8 kHz conversion."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
import wave
from pathlib import Path

import pytest

from ivr.tts import EspeakNg, PromptCache, TtsEngine, TtsError, clear_stale_temp, media_uri, wav_seconds
from tests.utils import until

needs_tools = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are needed"
)


def wav_format(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth()


class ToneEngine:
    """A stand-in engine: a 22,050 Hz tone whose length grows with the text; counts its calls."""

    name = "tone"

    def __init__(self, version: str = "1", delay: float = 0.0, fail: bool = False) -> None:
        self.version = version
        self.delay = delay
        self.fail = fail
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def synthesize(self, text: str, voice: str, *, out_dir: Path) -> Path:
        with self._lock:
            self.calls.append((text, voice))
        time.sleep(self.delay)
        if self.fail:
            raise TtsError("tone engine failed on purpose")
        out = out_dir / "tone.wav"
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(22050)
            w.writeframes(b"\x10\x20" * (22050 * max(1, len(text)) // 10))
        return out


def test_tone_engine_is_an_engine() -> None:
    assert isinstance(ToneEngine(), TtsEngine)
    assert isinstance(EspeakNg(), TtsEngine)


@needs_tools
def test_espeak_mandarin_cached_as_8khz_wav(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "prompts")
    started = time.perf_counter()
    path = cache.speak_sync("张三您好，这里是社区卫生服务中心。")
    cold = time.perf_counter() - started
    assert path.is_relative_to(tmp_path / "prompts" / "tts") and path.suffix == ".wav"
    assert wav_format(path) == (8000, 1, 2)
    assert 1.0 < wav_seconds(path) < 15.0
    mtime = path.stat().st_mtime_ns
    started = time.perf_counter()
    again = cache.speak_sync("张三您好，这里是社区卫生服务中心。")
    warm = time.perf_counter() - started
    assert again == path and path.stat().st_mtime_ns == mtime
    assert cache.stats == {"hits": 1, "made": 1}
    assert warm < cold / 5
    assert "1." in cache.engine.version  # espeak-ng's release is part of the key


def test_key_covers_text_voice_and_engine_version(tmp_path: Path) -> None:
    root = tmp_path / "p"
    a = PromptCache(root, ToneEngine("1"))
    base = a.tts_path("李四您好")
    assert a.tts_path("李四您好 ") == base  # surrounding space does not matter
    assert a.tts_path("王五您好") != base  # the rendered text: one file per contact's name
    assert a.tts_path("李四您好", voice="yue") != base
    assert PromptCache(root, ToneEngine("2")).tts_path("李四您好") != base


def test_cache_hit_skips_the_engine(tmp_path: Path) -> None:
    engine = ToneEngine()
    cache = PromptCache(tmp_path, engine)
    first = cache.speak_sync("一二三")
    assert cache.speak_sync("一二三") == first
    assert PromptCache(tmp_path, engine).speak_sync("一二三") == first  # also across processes' caches
    assert engine.calls == [("一二三", "cmn")]
    assert wav_format(first) == (8000, 1, 2)


def test_concurrent_callers_share_one_synthesis_and_never_see_half_a_file(tmp_path: Path) -> None:
    engine = ToneEngine(delay=0.2)
    cache = PromptCache(tmp_path, engine)
    text = "这是一段比较长的提示音，用来测试并发写入。" * 3
    target = cache.tts_path(text)
    seen_sizes: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        # one last look after the callers are done, so a watcher the scheduler starved still sees the file
        while True:
            done = stop.is_set()
            with contextlib.suppress(FileNotFoundError):
                seen_sizes.add(target.stat().st_size)
            if done:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cache.speak_sync(text))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    final = target.stat().st_size
    assert results == [target] * 8
    assert len(engine.calls) == 1
    assert seen_sizes == {final}  # the file appeared whole, never growing
    assert not list(tmp_path.rglob("*.tmp.wav"))


async def test_async_callers_share_one_run(tmp_path: Path) -> None:
    engine = ToneEngine(delay=0.1)
    cache = PromptCache(tmp_path, engine)
    paths = await asyncio.gather(*(cache.speak("同一句话") for _ in range(5)), cache.speak("另一句话"))
    assert len(set(paths)) == 2 and len(engine.calls) == 2


async def test_cancelled_caller_does_not_break_the_others(tmp_path: Path) -> None:
    engine = ToneEngine(delay=0.2)
    cache = PromptCache(tmp_path, engine)
    first = asyncio.ensure_future(cache.speak("取消测试"))
    second = asyncio.ensure_future(cache.speak("取消测试"))
    await until(lambda: engine.calls, timeout=30, what="the synthesis started")  # cancelled mid-run
    first.cancel()
    assert (await second).exists()


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, ToneEngine(fail=True))
    with pytest.raises(TtsError, match="on purpose"):
        cache.speak_sync("会失败")
    assert not cache.tts_path("会失败").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    with pytest.raises(TtsError, match="empty"):
        cache.speak_sync("   ")


@needs_tools
def test_recorded_file_converted_and_cached_by_content(tmp_path: Path) -> None:
    src = tmp_path / "chime.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\x00\x10" * 2 * 44100)
    cache = PromptCache(tmp_path / "cache", ToneEngine())
    out = cache.file_sync(src)
    assert wav_format(out) == (8000, 1, 2) and abs(wav_seconds(out) - 1.0) < 0.05
    assert cache.file_sync(src) == out and cache.stats["made"] == 1
    with pytest.raises(TtsError, match="nothere"):
        cache.file_sync(tmp_path / "nothere.wav")


@needs_tools
def test_silence_and_media_uri(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, ToneEngine())
    gap = cache.silence_sync(0.8)
    assert gap.name == "800.wav" and abs(wav_seconds(gap) - 0.8) < 0.01
    assert media_uri(gap) == f"sound:{tmp_path.resolve()}/silence/800"


def test_clear_stale_temp_removes_only_old_leftovers(tmp_path: Path) -> None:
    import os

    old = tmp_path / "tts" / "ab" / ".abc.x1.tmp.wav"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = old.with_name(".abc.x2.tmp.wav")
    fresh.write_bytes(b"in progress")
    kept = old.with_name("abc.wav")
    kept.write_bytes(b"whole")
    os.utime(kept, (time.time() - 7200, time.time() - 7200))
    assert clear_stale_temp(tmp_path) == 1
    assert not old.exists() and fresh.exists() and kept.exists()


def test_a_prompt_played_again_is_hashed_once_and_a_personal_one_touched_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """speak()'s hit path (issue 13, Round 8): the path remembered per text; a personal prompt's
    mtime moved at most every TOUCH_EVERY seconds, far inside the purge's LIVE_SECONDS; a prompt
    the purge took is made again."""
    from ivr import tts

    clock = [100.0]
    engine = ToneEngine()
    cache = PromptCache(tmp_path, engine, monotonic=lambda: clock[0])
    hashed: list[str] = []
    touched: list[Path] = []
    real_key = cache.tts_key

    def key(text: str, voice: str | None = None) -> str:
        hashed.append(text)
        return real_key(text, voice)

    monkeypatch.setattr(cache, "tts_key", key)
    monkeypatch.setattr(tts, "_touch", touched.append)
    assert tts.TOUCH_EVERY * 10 <= tts.LIVE_SECONDS

    async def plays() -> list[Path]:
        return [await cache.speak("张三您好", personal=True) for _ in range(3)]

    first = asyncio.run(plays())
    assert len(set(first)) == 1 and first[0].exists()
    made_hashes = len(hashed)
    asyncio.run(plays())
    assert len(hashed) == made_hashes, "hits: no SHA-256"
    assert touched.count(first[0]) == 2, "made (touched), then one touch for the hits"
    clock[0] += tts.TOUCH_EVERY
    asyncio.run(plays())
    assert touched.count(first[0]) == 3, "a minute on: touched again"
    first[0].unlink()  # the purge took it
    assert asyncio.run(cache.speak("张三您好", personal=True)) == first[0] and first[0].exists()
