"""speech-dispatcher through SSIP, its text protocol on a Unix (or TCP) socket.

SSIP is small and stable (the Speech Synthesis Interface Protocol in speech-dispatcher's manual):
a command line ends in CRLF and is answered by lines `NNN-text` ending with one `NNN text`, 2xx
meaning success. `SPEAK` is answered 230, then the message follows line by line (a line that
starts with a dot gets a second one) and ends with a line holding one dot, answered 225. Speaking
it directly keeps the agent's install free of a compiled binding (`python3-speechd` is Debian's
package, not on PyPI) and lets the lab test put a recording stand-in on the socket.

The address is speech-dispatcher's own: `$SPEECHD_ADDRESS` (`unix_socket:PATH` or
`inet_socket:HOST:PORT`), else `$XDG_RUNTIME_DIR/speech-dispatcher/speechd.sock`. When that socket
is missing the daemon is started once with `speech-dispatcher --spawn`, as its own clients do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from softphone.speech import SpeechError

log = logging.getLogger(__name__)

CLIENT_NAME = "user:warmline:softphone"
TIMEOUT_S = 5.0
SPAWN_WAIT_S = 3.0
# The catalogue's locales as SSIP LANGUAGE values (RFC 1766 tags, as speech-dispatcher wants).
LANGUAGES = {"zh_CN": "zh", "en": "en"}


def default_address(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("SPEECHD_ADDRESS"):
        return env["SPEECHD_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return f"unix_socket:{Path(runtime) / 'speech-dispatcher' / 'speechd.sock'}"


def encode_message(text: str) -> bytes:
    """The SSIP data block for `text`: CRLF lines, leading dots doubled, ended by a lone dot."""
    lines = [("." + line if line.startswith(".") else line) for line in text.splitlines() or [""]]
    return ("\r\n".join(lines) + "\r\n.\r\n").encode("utf-8")


class SpeechDispatcher:
    name = "speech-dispatcher"

    def __init__(self, address: str | None = None, *, spawn: bool = True) -> None:
        self.address = address or default_address()
        self.spawn = spawn
        self._sock: socket.socket | None = None
        self._reader: object = None
        self._buffer = b""
        self._spawned = False
        self._language: str | None = None

    # -- connection --------------------------------------------------------------------------

    def _open_socket(self) -> socket.socket:
        kind, _sep, where = self.address.partition(":")
        if kind == "unix_socket":
            if not Path(where).exists() and self.spawn and not self._spawned:
                self._spawn(Path(where))
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = where
        elif kind == "inet_socket":
            host, _sep, port = where.rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host or "127.0.0.1", int(port or 6560))
        else:
            raise SpeechError(
                f"speech-dispatcher address {self.address!r} is not unix_socket: or inet_socket:"
            )
        sock.settimeout(TIMEOUT_S)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise SpeechError(f"speech-dispatcher not reachable at {self.address}: {exc}") from exc
        return sock

    def _spawn(self, path: Path) -> None:
        self._spawned = True
        exe = shutil.which("speech-dispatcher")
        if exe is None:
            return
        log.info("starting speech-dispatcher (%s)", exe)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([exe, "--spawn"], timeout=SPAWN_WAIT_S, check=False, capture_output=True)
        deadline = time.monotonic() + SPAWN_WAIT_S
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the daemon creates its socket a moment after it forks

    def _connect(self) -> None:
        if self._sock is not None:
            return
        self._sock = self._open_socket()
        self._buffer = b""
        self._language = None
        self._command(f"SET self CLIENT_NAME {CLIENT_NAME}")

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None

    # -- protocol ----------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._drop()
            raise SpeechError(f"speech-dispatcher went away: {exc}") from exc

    def _reply(self) -> tuple[int, str]:
        """Read one full reply; its final code and text."""
        assert self._sock is not None
        while True:
            line, sep, rest = self._buffer.partition(b"\r\n")
            if sep:
                self._buffer = rest
                text = line.decode("utf-8", "replace")
                if len(text) >= 4 and text[3] == " " and text[:3].isdigit():
                    return int(text[:3]), text[4:]
                continue  # an "NNN-" continuation line
            try:
                chunk = self._sock.recv(4096)
            except OSError as exc:
                self._drop()
                raise SpeechError(f"speech-dispatcher did not answer: {exc}") from exc
            if not chunk:
                self._drop()
                raise SpeechError("speech-dispatcher closed the connection")
            self._buffer += chunk

    def _command(self, line: str, *, expect: int | None = None) -> str:
        self._send(line.encode("utf-8") + b"\r\n")
        code, text = self._reply()
        if not 200 <= code < 300 or (expect is not None and code != expect):
            raise SpeechError(f"speech-dispatcher refused {line.split()[0]}: {code} {text}")
        return text

    # -- Speaker -----------------------------------------------------------------------------

    def running(self) -> bool:
        try:
            self._connect()
        except SpeechError as exc:
            log.debug("speech-dispatcher: %s", exc)
            return False
        return True

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        self._connect()
        lang = LANGUAGES.get(language, "zh")
        if lang != self._language:
            self._command(f"SET self LANGUAGE {lang}")
            self._language = lang
        if interrupt:
            self._command("CANCEL self")
        self._command("SPEAK", expect=230)
        self._send(encode_message(text))
        code, reply = self._reply()
        if code != 225:
            raise SpeechError(f"speech-dispatcher did not queue the message: {code} {reply}")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(SpeechError):
                self._command("QUIT")
        self._drop()
