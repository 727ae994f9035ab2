"""A private lab for one test module: its own var dir and ports, so labs never clash.

Every module that starts Asterisk takes a named slot from ``LAB_SLOTS``; its ARI, AMI, SIP and RTP
ports come from the slot. Slots sit below the kernel's ephemeral range (32768+), so a client
socket or a ``free_port()`` never takes a lab's port, and no two modules share one
(``tests/unit/test_lab_ports.py`` checks both), so any number of test workers can run labs at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.ari import AriClient
from core.settings import AsteriskNode, Settings
from warmline.lab import LabError, find_asterisk, lab_start, lab_status, lab_stop

FIRST_PORT = 10000
SLOT_WIDTH = 400
EPHEMERAL_START = 32768  # Linux's default ip_local_port_range starts here
# The default lab's ports (`make demo`, `warmline lab start`: AMI 15038, SIP 15060 and SIP/TLS 15061,
# ARI 18088, RTP 31000-31999). A demo's lab left running must not fail the suite, so no slot's block holds
# them: slots are numbered over the blocks clear of these (fresh run 3 found the pacing lab's ARI
# on 18088 beside a demo's lab).
DEFAULT_LAB_PORTS = (range(15038, 15039), range(15060, 15062), range(18088, 18089), range(31000, 32000))


def _clear_blocks() -> list[int]:
    """The first port of each SLOT_WIDTH block below the ephemeral range that the default lab leaves free."""
    bases = range(FIRST_PORT, EPHEMERAL_START - SLOT_WIDTH + 1, SLOT_WIDTH)
    return [
        base
        for base in bases
        if not any(r.start < base + SLOT_WIDTH and base < r.stop for r in DEFAULT_LAB_PORTS)
    ]


BLOCKS = _clear_blocks()

# One slot per module that starts a lab; a new lab module takes the next free number.
LAB_SLOTS: dict[str, int] = {
    "bridge": 0,
    "inbound": 1,
    "ivr": 2,
    "dialer_campaign": 3,
    "recording_chain": 4,
    "lab": 5,
    "softphone_lab": 6,
    "dialer_crash": 7,
    "desk": 8,
    "preview_dial": 9,
    "provisioning": 10,
    "welfare": 11,
    "softphone_real_call": 12,
    "dialer_bench": 13,
    "transfer": 14,
    "sip": 15,
    "privacy": 16,
    "ari_faults": 17,
    "faults_db_bus": 18,
    "survey": 19,
    "pacing": 20,
    "desk_service": 21,
    "help": 22,
    "nailed": 23,
    "load": 24,
    "wellbeing": 25,
    "practice": 26,
    "pacing_bench": 27,
    "lease": 28,
    "replaced": 29,
}


@dataclass(frozen=True)
class LabPorts:
    """The ports of one lab slot: AMI base+38, SIP base+60, SIP/TLS base+61, a SIPp far end
    base+62 (its RTP base+70..73), ARI base+88, RTP base+100..base+399."""

    slot: int

    @property
    def base(self) -> int:
        return BLOCKS[self.slot]

    @property
    def ami(self) -> int:
        return self.base + 38

    @property
    def sip(self) -> int:
        return self.base + 60

    @property
    def sip_tls(self) -> int:
        return self.base + 61

    @property
    def far_end(self) -> int:
        """SIPp's SIP port when it plays the far end of a trunk (the lab's pjsip.conf: lab-sipp
        points at plain SIP + 2)."""
        return self.sip + 2

    @property
    def far_end_media(self) -> int:
        """SIPp's RTP port (and + 2 for its video echo), clear of Asterisk's RTP range."""
        return self.base + 70

    @property
    def ari(self) -> int:
        return self.base + 88

    @property
    def rtp_start(self) -> int:
        return self.base + 100

    @property
    def rtp_end(self) -> int:
        return self.base + SLOT_WIDTH - 1

    def all(self) -> range:
        return range(self.base, self.base + SLOT_WIDTH)


def lab_ports(name: str) -> LabPorts:
    """The ports of the lab slot `name` (a key of ``LAB_SLOTS``)."""
    return LabPorts(LAB_SLOTS[name])


@contextlib.contextmanager
def private_lab(var_dir: Path, ports: LabPorts, **settings_kwargs: object) -> Iterator[Settings]:
    """Start a lab on the ports of one slot, with its own var dir."""
    try:
        find_asterisk()
    except LabError as exc:
        pytest.fail(f"no Asterisk: {exc} (make test installs it)")
    settings_kwargs.setdefault("dialer_enabled", False)  # no implicit dialer on a test's event stream
    rtp = {"WARMLINE_LAB_RTP_START": str(ports.rtp_start), "WARMLINE_LAB_RTP_END": str(ports.rtp_end)}
    saved = {k: os.environ.get(k) for k in rtp}
    os.environ.update(rtp)
    settings = Settings(
        var_dir=var_dir,
        asterisk_nodes=[AsteriskNode(ari_url=f"http://127.0.0.1:{ports.ari}/ari", ami_port=ports.ami)],
        sip_port=ports.sip,
        _env_file=None,
        **settings_kwargs,  # type: ignore[arg-type]
    )
    lab_start(settings)
    try:
        yield settings
    finally:
        lab_stop(settings)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lab_client(settings: Settings) -> AriClient:
    """An ARI client for the lab that `settings` describe (use as `async with`)."""
    st = lab_status(settings)
    return AriClient(st.ari_url, st.ari_user, st.ari_password, st.app)
