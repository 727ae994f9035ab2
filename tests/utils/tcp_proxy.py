"""A TCP proxy the test can cut and restore: a database or a broker "unreachable" on demand.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:      # listens on 127.0.0.1:<free port>
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.cut()       # every open connection is reset, new ones are refused (closed at once)
        proxy.restore()   # new connections go through again

Threads only (one accept loop, two pumps per connection), so it works beside any event loop and
beside a subprocess under test. Loopback only: it refuses any upstream outside 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from types import TracebackType
from typing import Self


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(upstream[0])).is_loopback:
            raise ValueError(f"tcp proxy upstream {upstream[0]} is not a loopback address")
        self.upstream = upstream
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.2)
        self.host, self.port = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._up = True
        self._stop = threading.Event()
        self.accepted = 0
        self.refused = 0
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def up(self) -> bool:
        return self._up

    def cut(self) -> None:
        """Reset every open connection; refuse new ones until `restore`."""
        with self._lock:
            self._up = False
            self.cuts += 1
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._thread.join(2)
        self._server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self.refused += 1
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if not self._up:
                    _reset(client)
                    _reset(upstream)
                    continue
                self._open |= {client, upstream}
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a cut cable or a killed server looks to the peer; the
    pump blocked in recv() on it wakes up (SHUT_RD) and ends."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
