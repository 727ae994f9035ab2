"""Prompts for Asterisk: text to speech behind a small engine interface, cached by content hash.

Every prompt the runner plays is an 8 kHz mono 16-bit WAV under ``settings.var_dir/"prompts"``,
which Asterisk plays as ``sound:/absolute/path/without/extension`` (verified against the lab's
Asterisk 22). Files are written to a temporary name in the same folder and renamed into place, so a
call never reads half a prompt, however many calls render the same text at once.

Cache layout (``PromptCache.root``)::

    tts/<ab>/<sha256>.wav     spoken text the same for everyone; the key hashes engine, engine
                              version, voice and the text
    personal/sealed/<ab>/<sha256>.wav.enc   spoken text rendered with a contact's own fields
                              ({name}: one file per name) is personal data: kept encrypted at rest
                              (AES-256-GCM, the keyring's current key, 0600), deleted
                              ``personal_prompt_hours`` after it was made
    personal/live/<sha256>.wav  the plain copy Asterisk plays, 0640 in 0750 folders (Asterisk's
                              group reads it, nobody else); made again from the sealed file when a
                              call needs it, deleted once unused for LIVE_SECONDS
                              (:func:`purge_personal`, run by the IVR's worker)
    files/<ab>/<sha256>.wav   recorded prompts converted to 8 kHz; the key hashes the file's bytes
    silence/<ms>.wav          silence between repeats
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.keyring import Keyring, KeyringError, load_keyring

if TYPE_CHECKING:
    from core.settings import Settings

CACHE_FORMAT = "1"  # bump when the conversion changes
SAMPLE_RATE = 8000


class TtsError(RuntimeError):
    """Speech could not be made or converted; says which tool failed and why."""


@runtime_checkable
class TtsEngine(Protocol):
    """Text to speech: writes a WAV (any rate) for ``text`` into ``out_dir`` and returns its path."""

    name: str

    @property
    def version(self) -> str: ...

    def synthesize(self, text: str, voice: str, *, out_dir: Path) -> Path: ...


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise TtsError(f"{name} is not installed (apt-get install espeak-ng sox)")
    return path


def _run(argv: list[str], timeout: float = 60.0) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TtsError(f"{Path(argv[0]).name} took longer than {timeout:.0f} s") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-400:]
        raise TtsError(f"{Path(argv[0]).name} failed ({proc.returncode}): {err}")


class EspeakNg:
    """espeak-ng; voice ``cmn`` speaks Mandarin. Writes 22,050 Hz WAV."""

    name = "espeak-ng"

    def __init__(self, speed: int = 165, pitch: int | None = None) -> None:
        self.speed = speed
        self.pitch = pitch

    @functools.cached_property
    def version(self) -> str:
        proc = subprocess.run([_tool("espeak-ng"), "--version"], capture_output=True, text=True, check=False)
        words = proc.stdout.split()
        release = words[words.index("text-to-speech:") + 1] if "text-to-speech:" in words else proc.stdout
        return f"{release.strip()};s={self.speed};p={self.pitch}"

    def synthesize(self, text: str, voice: str, *, out_dir: Path) -> Path:
        out = out_dir / "speech.wav"
        argv = [_tool("espeak-ng"), "-v", voice, "-s", str(self.speed), "-w", str(out)]
        if self.pitch is not None:
            argv += ["-p", str(self.pitch)]
        # "--" so a text starting with "-" is never an option; text goes as one argv item, no shell.
        _run([*argv, "--", text])
        return out


PUBLIC_MODE = 0o644
PERSONAL_MODE = 0o640  # never world-readable: a prompt that says a name is personal data
PERSONAL_DIR = "personal"
LIVE_SECONDS = 1800.0  # a plain personal prompt unused this long is deleted (its sealed copy stays)
# A personal prompt in use is touched (its mtime: when last used) at most this often per process:
# far inside LIVE_SECONDS, so the purge never takes one a call uses, without a utime each play.
TOUCH_EVERY = 60.0
PATHS_KEPT = 4096  # the prompts' paths remembered per text (a SHA-256 each): then forgotten at once
SEAL_MAGIC = b"WLPRM1\0\0"


def _seal(data: bytes, ring: Keyring) -> bytes:
    """A personal prompt encrypted with the keyring's current key (header authenticated)."""
    nonce = os.urandom(12)
    header = SEAL_MAGIC + ring.current.encode("ascii").ljust(8, b"\0") + nonce
    return header + AESGCM(ring.current_key).encrypt(nonce, data, header)


def _unseal(blob: bytes, ring: Keyring) -> bytes | None:
    """The plain prompt, or None when it cannot be opened (a retired key, damage): make it again."""
    header, body = blob[:28], blob[28:]
    if len(header) != 28 or not header.startswith(SEAL_MAGIC):
        return None
    try:
        key = ring.key(header[8:16].rstrip(b"\0").decode("ascii", "replace"))
        return AESGCM(key).decrypt(header[16:28], body, header)
    except (KeyringError, InvalidTag):
        return None


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically, never readable beyond ``mode`` (0750 folders above it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def _convert(src: Path, dst: Path, *, normalize: bool = True, mode: int = PUBLIC_MODE) -> None:
    """src (any format sox reads) -> dst, 8 kHz mono 16-bit WAV, written atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o750 if mode == PERSONAL_MODE else 0o777)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=".tmp.wav", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        effects = ["norm", "-3"] if normalize else []
        _run([_tool("sox"), str(src), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
              str(tmp), *effects])  # fmt: skip
        tmp.chmod(mode)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def media_uri(path: Path) -> str:
    """The ARI media URI that plays ``path`` (absolute, extension dropped so Asterisk picks the format)."""
    if not path.is_absolute():  # resolved against the working directory of the moment
        return f"sound:{path.resolve().with_suffix('')}"
    return _media_uri(path)


@functools.lru_cache(maxsize=4096)
def _media_uri(path: Path) -> str:
    # Remembered per path: resolving walks every directory of it (an lstat each), and every call
    # of a campaign plays the same prompts (issue 13, Round 7).
    resolved = path.resolve()
    return f"sound:{resolved.with_suffix('')}"


def wav_seconds(path: Path) -> float:
    """Duration of a 16-bit mono PCM WAV from its size (header taken as 44 bytes)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0.0
    return max(0, size - 44) / (2 * SAMPLE_RATE)


class PromptCache:
    """Prompts ready for Asterisk, made at most once per content (per process and across them)."""

    def __init__(
        self,
        root: Path,
        engine: TtsEngine | None = None,
        *,
        voice: str = "cmn",
        max_parallel: int | None = None,
        keyring: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root.resolve()
        # Where the keys of sealed personal prompts are (Settings.keyring_path; see for_settings).
        self.keyring_path = keyring or self.root.parent / "keys" / "keyring.json"
        self.engine: TtsEngine = engine or EspeakNg()
        self.voice = voice
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._slots = threading.BoundedSemaphore(max_parallel or max(2, os.cpu_count() or 2))
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self.stats = {"hits": 0, "made": 0}
        self.monotonic = monotonic
        # speak()'s hit path (issue 13, Round 8): the path of each text, and when this process
        # last touched each personal prompt.
        self._paths: dict[tuple[str, str | None, bool], Path] = {}
        self._touched: dict[Path, float] = {}

    @classmethod
    def for_var_dir(
        cls, var_dir: Path, engine: TtsEngine | None = None, *, voice: str = "cmn"
    ) -> PromptCache:
        return cls(var_dir / "prompts", engine, voice=voice)

    @classmethod
    def for_settings(
        cls, settings: Settings, engine: TtsEngine | None = None, *, voice: str = "cmn"
    ) -> PromptCache:
        """The service's cache: under VAR_DIR/prompts, personal prompts sealed with its keyring."""
        return cls(settings.var_dir / "prompts", engine, voice=voice, keyring=settings.keyring_path)

    def _keyring(self) -> Keyring:
        return load_keyring(self.keyring_path, var_dir=self.root.parent)

    # ------------------------------------------------------------ keys and paths

    def tts_key(self, text: str, voice: str | None = None) -> str:
        parts = (CACHE_FORMAT, self.engine.name, self.engine.version, voice or self.voice, text.strip())
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def tts_path(self, text: str, voice: str | None = None, *, personal: bool = False) -> Path:
        """Where the prompt Asterisk plays is (for a personal one: its plain, short-lived copy)."""
        key = self.tts_key(text, voice)
        if personal:
            return self.root / PERSONAL_DIR / "live" / f"{key}.wav"
        return self.root / "tts" / key[:2] / f"{key}.wav"

    def sealed_path(self, text: str, voice: str | None = None) -> Path:
        key = self.tts_key(text, voice)
        return self.root / PERSONAL_DIR / "sealed" / key[:2] / f"{key}.wav.enc"

    # ------------------------------------------------------------ making (blocking)

    def _once(self, key: str, target: Path, make: Callable[[], None]) -> Path:
        if target.exists():
            self.stats["hits"] += 1
            return target
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if target.exists():  # another thread made it meanwhile
                self.stats["hits"] += 1
                return target
            with self._slots:
                make()
            self.stats["made"] += 1
        with self._lock:
            self._key_locks.pop(key, None)
        return target

    def speak_sync(self, text: str, voice: str | None = None, *, personal: bool = False) -> Path:
        """The cached 8 kHz WAV of ``text`` (rendered: placeholders already filled in).
        ``personal``: the text holds a contact's own fields (kept apart, 0640, purged)."""
        text = text.strip()
        if not text:
            raise TtsError("nothing to say: the text is empty")
        voice = voice or self.voice
        target = self.tts_path(text, voice, personal=personal)
        mode = PERSONAL_MODE if personal else PUBLIC_MODE

        def render() -> None:
            with tempfile.TemporaryDirectory(prefix="warmline-tts-") as tmp:
                raw = self.engine.synthesize(text, voice, out_dir=Path(tmp))
                _convert(raw, target, mode=mode)

        def make() -> None:
            if not personal:
                render()
                return
            # The sealed copy, when the keyring still opens it, saves a render; otherwise render
            # and seal what was made.
            (self.root / PERSONAL_DIR).mkdir(parents=True, exist_ok=True, mode=0o750)
            sealed = self.sealed_path(text, voice)
            ring = self._keyring()
            plain = _unseal(sealed.read_bytes(), ring) if sealed.exists() else None
            if plain is not None:
                _write_private(target, plain, PERSONAL_MODE)
                return
            render()
            _write_private(sealed, _seal(target.read_bytes(), ring), 0o600)

        path = self._once(("p:" if personal else "") + self.tts_key(text, voice), target, make)
        if personal:
            _touch(path)
        return path

    def file_sync(self, source: Path) -> Path:
        """A recorded prompt converted to 8 kHz mono (cached by the file's bytes)."""
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError as exc:
            raise TtsError(f"prompt file {source}: {exc.strerror or exc}") from exc
        key = hashlib.sha256(f"{CACHE_FORMAT}\0file\0{digest}".encode()).hexdigest()
        target = self.root / "files" / key[:2] / f"{key}.wav"
        return self._once(key, target, lambda: _convert(source, target, normalize=False))

    def silence_sync(self, seconds: float) -> Path:
        ms = max(1, round(seconds * 1000))
        target = self.root / "silence" / f"{ms}.wav"

        def make() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{ms}.", suffix=".tmp.wav", dir=target.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                _run([_tool("sox"), "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(tmp),
                      "trim", "0", f"{ms / 1000:.3f}"])  # fmt: skip
                tmp.chmod(0o644)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

        return self._once(f"silence-{ms}", target, make)

    # ------------------------------------------------------------ making (async, shared in flight)

    async def _shared(self, key: str, make: Callable[[], Path]) -> Path:
        """Run ``make`` in a thread; concurrent callers for the same key share one run, and a
        caller that is cancelled stops waiting without stopping the others' run."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(make))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def speak(self, text: str, voice: str | None = None, *, personal: bool = False) -> Path:
        text = text.strip()
        target = self._known_path(text, voice, personal) if text else None
        if target is not None and target.exists():  # (the purge may have taken it: made again)
            self.stats["hits"] += 1
            if personal:
                self._in_use(target)
            return target
        key = ("p:" if personal else "") + self.tts_key(text, voice)
        return await self._shared(key, lambda: self.speak_sync(text, voice, personal=personal))

    def _known_path(self, text: str, voice: str | None, personal: bool) -> Path:
        """`tts_path`, remembered per text: a prompt played at every call is hashed once."""
        key = (text, voice, personal)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= PATHS_KEPT:
                self._paths.clear()
            path = self._paths[key] = self.tts_path(text, voice, personal=personal)
        return path

    def _in_use(self, path: Path) -> None:
        """A personal prompt played: its mtime says so, at most every TOUCH_EVERY seconds (the
        purge leaves it until unused for LIVE_SECONDS)."""
        now = self.monotonic()
        if now - self._touched.get(path, -1e18) < TOUCH_EVERY:
            return
        if len(self._touched) >= PATHS_KEPT:
            self._touched.clear()
        _touch(path)
        self._touched[path] = now

    async def file(self, source: Path) -> Path:
        return await self._shared(f"file:{source}", lambda: self.file_sync(source))

    async def silence(self, seconds: float) -> Path:
        return await self._shared(f"silence:{seconds}", lambda: self.silence_sync(seconds))


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def purge_personal(root: Path, *, older_than_s: float, now: float, live_s: float = LIVE_SECONDS) -> int:
    """Delete the sealed personal prompts (a contact's name spoken) made more than
    ``older_than_s`` seconds before ``now`` (epoch seconds), and their plain copies unused for
    ``live_s``; returns how many files went. A call still playing one keeps its open file; a later
    call of that contact makes it again."""
    folder = root / PERSONAL_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for pattern, age in (("sealed/*/*.wav.enc", older_than_s), ("live/*.wav", min(live_s, older_than_s))):
        for path in folder.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > age:
                    path.unlink()
                    removed += 1
    return removed


def clear_stale_temp(root: Path, older_than: float = 3600.0) -> int:
    """Remove temporary files a killed process left behind; returns how many."""
    removed = 0
    now = time.time()
    for tmp in root.rglob(".*.tmp.wav"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed += 1
    return removed
