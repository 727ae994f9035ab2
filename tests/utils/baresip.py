"""Debian's baresip as an agent's phone: an independent SIP client, registered the way home agents
register (SIP over TLS to the lab, given the lab's CA, SRTP with SDES keys, mandatory). Debian's baresip
1.0 loads the CA (`sip_cafile`) but does not verify the server with it (a certificate from another CA
is accepted too); the product's softphone (pjsua2) does verify: tests/integration/test_sip_tls_lab.py.

    phone = start_baresip(folder, Baresip(endpoint, secret, tls_port, ca_file), tone_hz=700)
    ...
    phone.stop()

It auto-answers, sends `source` (a WAV, or a sine of `tone_hz` made with sox) and writes what it
hears to a WAV in its folder (`BaresipPhone.heard`). ``plain=True`` (UDP, no SRTP) is only for negative tests.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULES = "/usr/lib/baresip/modules"


@dataclass(frozen=True)
class Baresip:
    """An agent's account as baresip sees it."""

    user: str
    password: str = field(repr=False)
    port: int  # the lab's SIP/TLS port (or its UDP port when plain)
    ca_file: Path | None = None
    host: str = "127.0.0.1"
    plain: bool = False  # UDP without SRTP: what agents may no longer do
    srtp: bool = True

    def account_line(self) -> str:
        transport = "udp" if self.plain else "tls"
        media = ";mediaenc=srtp-mand" if self.srtp and not self.plain else ""
        return (
            f"<sip:{self.user}@{self.host}:{self.port};transport={transport}>;auth_pass={self.password};"
            f"answermode=auto;regint=60{media}\n"
        )


@dataclass
class BaresipPhone:
    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def heard(self) -> Path:
        """What baresip decoded in its (last) call: sndfile's ``dump-*-dec.wav``."""
        found = sorted(self.folder.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else self.folder / "dump-none-dec.wav"

    @property
    def log(self) -> Path:
        return self.folder / "baresip.log"

    def said(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def tone_wav(path: Path, hz: int, seconds: int = 120) -> Path:
    """A 8 kHz mono sine (baresip's own sine source needs 48 kHz; G.711 wants 8 kHz)."""
    synth = ["synth", str(seconds), "sine", str(hz), "vol", "0.3"]
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), *synth], check=True)
    return path


def start_baresip(
    folder: Path, account: Baresip, *, tone_hz: int = 440, source: Path | None = None
) -> BaresipPhone:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is not installed (make test installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    source = source or tone_wav(folder / "tone.wav", tone_hz)
    (folder / "accounts").write_text(account.account_line())
    lines = [
        f"module_path\t{MODULES}",
        f"sip_listen\t{account.host}:0",
        # baresip 1.0 has no file player, and ALSA's null device never blocks: its player thread
        # spun at ~80% of a core for every call in progress (measured, two phones in a call), a
        # tenth of the suite's CPU. aubridge's player with no source of the same name is never
        # started, so nothing plays; sndfile still writes what was decoded (heard) and encoded
        # (said) to WAV files in the folder, as the frames arrive and leave.
        "audio_player\taubridge,unplayed",
        f"snd_path\t{folder}",
        f"audio_source\taufile,{source}",
        "ausrc_srate\t8000",
        "auplay_srate\t8000",
        "ausrc_channels\t1",
        "auplay_channels\t1",
        "module\tg711.so",
        "module\taufile.so",
        "module\taubridge.so",
        "module\tsndfile.so",
        "module_app\taccount.so",
        "module_app\tmenu.so",
    ]
    if not account.plain:
        lines.append("module\tsrtp.so")
        if account.ca_file is not None:
            lines.append(f"sip_cafile\t{account.ca_file}")
    (folder / "config").write_text("\n".join(lines) + "\n")
    with open(folder / "baresip.log", "wb") as out:
        proc = subprocess.Popen(
            ["baresip", "-f", str(folder)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return BaresipPhone(folder, proc)
