"""Stopping a child process the tests started (a dialer worker, SIPp): asked first, killed if it
does not go, and always reaped so no zombie or open pipe outlives the test."""

from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM, wait `grace_s` for a clean exit (a worker journals and closes its calls), then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
