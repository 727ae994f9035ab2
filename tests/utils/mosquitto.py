"""A private Mosquitto for a test that stops or kills the broker (never the machine's shared one),
and a real MQTT client listening to it with a persistent session.

    broker = Mosquitto(tmp / "mosquitto")
    broker.start()
    listener = BusListener(broker.port, prefix)   # every message under the prefix, QoS 1
    broker.stop(); ...; broker.start()            # the listener's session and queue survive
"""

from __future__ import annotations

import getpass
import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.utils.net import free_port

Seen = tuple[str, dict[str, Any]]  # (topic, JSON body)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Mosquitto:
    """A private broker on a free port, killable with -9, persistent so a subscriber's session
    (and its QoS 1 queue) survives a restart."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {root}/\nautosave_interval 1\nlog_dest file {root}/mosquitto.log\n"
            # Started as root, mosquitto would become user "mosquitto", who cannot write the test's
            # directory: no persistence (so no session survives a restart) and no log.
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            assert self.proc.poll() is None, f"mosquitto exited: {self.log()}"
            assert time.monotonic() < deadline, f"mosquitto did not listen on {self.port}"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        """SIGTERM: connections close at once and the sessions are saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class BusListener:
    """A persistent-session QoS 1 subscriber to everything under `prefix`: what it received, in
    order. It reconnects every second while the broker is away."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the listener's subscription was not acknowledged"

    def _message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(body, dict):
            with self.lock:
                self.seen.append((msg.topic.removeprefix(self.prefix + "/"), body))

    def matching(self, test: Callable[[str, dict[str, Any]], bool]) -> list[Seen]:
        """What arrived so far that passes `test(topic relative to the prefix, body)`."""
        with self.lock:
            return [(t, b) for t, b in self.seen if test(t, b)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
