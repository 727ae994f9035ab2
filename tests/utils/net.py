"""Sockets for tests that start a server of their own."""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
TOP_PORT = 65535
_turn = itertools.count()


def _ports_above_the_ephemeral_range() -> range | None:
    """This worker's share of the ports above the kernel's ephemeral range (61000-65535 on Linux's
    defaults), or None where that range reaches the top."""
    try:
        high = int(PORT_RANGE.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        high = 60999
    if high >= TOP_PORT - 100:
        return None
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    share = (TOP_PORT - high) // max(workers, 1)
    first = high + 1 + index * share
    return range(first, first + share)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind theirs
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, for a server a test is about to start.

    Taken above the kernel's ephemeral range, from this xdist worker's own share of it, in turn: a
    port the kernel picked (bind to 0) could be handed to an outgoing connection before the server
    bound it (a fresh-clone run lost `warmline up` to "address already in use" that way, six workers
    on two cores), and workers never offer each other the same port."""
    ports = _ports_above_the_ephemeral_range()
    if ports is not None:
        for _ in range(len(ports)):
            port = ports[next(_turn) % len(ports)]
            if _bindable(host, port):
                return port
    with socket.socket() as s:
        s.bind((host, 0))
        picked: int = s.getsockname()[1]
        return picked
