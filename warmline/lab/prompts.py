"""Lab audio: espeak-ng Mandarin prompts and sox-made silence, beep and hold music.

Everything is written as 8 kHz mono 16-bit WAV into the lab's sounds folder (Asterisk plays
`warmline/<name>` and `silence/<n>` from there). Spoken prompts are cached by a hash of their text
and voice, so only the first start pays for speech synthesis.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VOICE = "cmn"
SPEED = 170  # words per minute, espeak-ng's default is 175
CACHE_VERSION = "1"

# name -> Mandarin text. Callees use lab-*; the others serve tests and practice IVR flows.
PROMPTS: dict[str, str] = {
    "lab-hello": "喂？",
    "lab-voicemail": "您好，我现在不方便接听电话，请在提示音后留言，我会尽快给您回电。谢谢。",
    "lab-talk": "好的，我明白了。我这边都清楚了，谢谢你们打电话来提醒，我会按时过去的。",
    "lab-confirm": "这里是社区服务中心的关怀回访电话。确认收到请按一，转人工请按零，不再接收请按九。",
    "lab-thanks": "感谢您的接听，再见。",
    "lab-press": "确认请按一。",
}

SILENCE_SECONDS = range(1, 11)


class PromptError(RuntimeError):
    """A prompt could not be made (espeak-ng or sox missing or failing)."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PromptError(f"{name} is not installed; the lab needs it (apt-get install espeak-ng sox)")
    return path


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PromptError(f"{' '.join(argv[:2])} failed: {proc.stderr.strip()[-500:]}")


def _key(text: str) -> str:
    return hashlib.sha256(f"{CACHE_VERSION}\0{VOICE}\0{SPEED}\0{text}".encode()).hexdigest()


def _speak(name: str, text: str, out_dir: Path) -> bool:
    """Render one prompt unless its cached copy is current; True if it was rendered."""
    target = out_dir / f"{name}.wav"
    stamp = out_dir / f".{name}.sha256"
    key = _key(text)
    if target.exists() and stamp.exists() and stamp.read_text().strip() == key:
        return False
    with tempfile.TemporaryDirectory(prefix="warmline-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        _run([_tool("espeak-ng"), "-v", VOICE, "-s", str(SPEED), "-w", str(raw), text])
        part = out_dir / f".{name}.tmp.wav"
        _run([_tool("sox"), str(raw), "-r", "8000", "-c", "1", "-b", "16", str(part), "norm", "-3"])
        part.replace(target)
    stamp.write_text(key + "\n")
    return True


def _sox_make(target: Path, effect: list[str]) -> int:
    if target.exists():
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.tmp.wav")
    _run([_tool("sox"), "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), *effect])
    part.replace(target)
    return 1


def make_silence(sounds_dir: Path) -> int:
    """silence/1.wav … silence/10.wav (the Debian root ships none); returns how many were made."""
    made = 0
    for seconds in SILENCE_SECONDS:
        made += _sox_make(sounds_dir / "silence" / f"{seconds}.wav", ["trim", "0", str(seconds)])
    return made


def make_tones(sounds_dir: Path) -> int:
    made = _sox_make(sounds_dir / "warmline" / "lab-beep.wav", ["synth", "0.6", "sine", "1000", "vol", "0.5"])
    made += _sox_make(
        sounds_dir / "moh" / "warmline-hold.wav",
        ["synth", "8", "sine", "440", "vol", "0.1", "fade", "1", "8", "1"],
    )
    return made


def make_prompts(sounds_dir: Path, prompts: dict[str, str] | None = None) -> int:
    """Render every prompt that is missing or stale, in parallel; returns how many were rendered."""
    out_dir = sounds_dir / "warmline"
    out_dir.mkdir(parents=True, exist_ok=True)
    items = list((prompts if prompts is not None else PROMPTS).items())
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda item: _speak(item[0], item[1], out_dir), items))
    return sum(done)


def make_all(sounds_dir: Path) -> int:
    return make_silence(sounds_dir) + make_tones(sounds_dir) + make_prompts(sounds_dir)
