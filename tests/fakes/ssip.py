"""A stand-in speech-dispatcher: an SSIP server on a Unix socket that records what it was asked to say.

It speaks the part of SSIP a client needs (SET, SPEAK with its data block, CANCEL, STOP, QUIT),
answering with speech-dispatcher's codes, and keeps each message with the language set at the time.
Threads, not asyncio, so a test on any loop (or a softphone in another process) can use it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Said:
    text: str
    language: str | None
    client: str | None


@dataclass
class _Client:
    language: str | None = None
    name: str | None = None
    buffer: bytes = b""


@dataclass
class SsipRecorder:
    path: Path
    said: list[Said] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _server: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def address(self) -> str:
        """The value for $SPEECHD_ADDRESS."""
        return f"unix_socket:{self.path}"

    def __enter__(self) -> SsipRecorder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(8)
        t = threading.Thread(target=self._accept, daemon=True, name="ssip-accept")
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def texts(self) -> list[str]:
        with self._lock:
            return [s.text for s in self.said]

    def wait_for(self, fragment: str, timeout: float = 30.0) -> Said:
        """The first message containing `fragment`; AssertionError listing what was said if none."""
        with self._changed:
            found = self._changed.wait_for(lambda: self._find(fragment), timeout)
        if not found:
            raise AssertionError(f"{fragment!r} never said; speech was asked to say: {self.texts()}")
        return found

    def _find(self, fragment: str) -> Said | None:
        with self._lock:
            return next((s for s in self.said if fragment in s.text), None)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _addr = self._server.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="ssip-client")
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        client = _Client()
        with conn:
            while (line := self._line(conn, client)) is not None:
                with self._lock:
                    self.commands.append(line)
                reply = self._handle(conn, client, line)
                if reply is None:
                    return
                conn.sendall(reply.encode() + b"\r\n")

    @staticmethod
    def _line(conn: socket.socket, client: _Client) -> str | None:
        while b"\r\n" not in client.buffer:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return None
            if not chunk:
                return None
            client.buffer += chunk
        line, _sep, client.buffer = client.buffer.partition(b"\r\n")
        return line.decode("utf-8")

    def _handle(self, conn: socket.socket, client: _Client, line: str) -> str | None:
        words = line.split(" ")
        command = words[0].upper()
        if command == "SET" and len(words) >= 4:
            setting = words[2].upper()
            if setting == "LANGUAGE":
                client.language = words[3]
                return "201 OK LANGUAGE SET"
            if setting == "CLIENT_NAME":
                client.name = words[3]
                return "208 OK CLIENT NAME SET"
            return "203 OK SET"
        if command == "SPEAK":
            conn.sendall(b"230 OK RECEIVING DATA\r\n")
            lines: list[str] = []
            while (data := self._line(conn, client)) is not None and data != ".":
                lines.append(data[1:] if data.startswith("..") else data)
            said = Said("\n".join(lines), client.language, client.name)
            with self._lock:
                self.said.append(said)
            with self._changed:
                self._changed.notify_all()
            return f"225-{len(self.said)}\r\n225 OK MESSAGE QUEUED"
        if command in ("CANCEL", "STOP"):
            return "210 OK CANCELED" if command == "CANCEL" else "210 OK STOPPED"
        if command == "QUIT":
            conn.sendall(b"231 HAPPY HACKING\r\n")
            return None
        return "300 ERR UNKNOWN COMMAND"
