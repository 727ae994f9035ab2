"""A private lab for one test module: its own var dir and ports, so labs never clash.

Each module that needs Asterisk picks a port base; ARI, SIP and RTP ports are derived from it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ari import AriClient
from core.settings import AsteriskNode, Settings
from warmline.lab import LabError, find_asterisk, lab_start, lab_status, lab_stop


@contextlib.contextmanager
def private_lab(var_dir: Path, port_base: int, **settings_kwargs: object) -> Iterator[Settings]:
    """Start a lab on ARI port_base+8088, SIP port_base+5060, RTP port_base+6000..6999."""
    try:
        find_asterisk()
    except LabError as exc:
        pytest.fail(f"no Asterisk: {exc} (make test installs it)")
    settings_kwargs.setdefault("dialer_enabled", False)  # no implicit dialer on a test's event stream
    rtp = {"WARMLINE_LAB_RTP_START": str(port_base + 6000), "WARMLINE_LAB_RTP_END": str(port_base + 6999)}
    saved = {k: os.environ.get(k) for k in rtp}
    os.environ.update(rtp)
    settings = Settings(
        var_dir=var_dir,
        asterisk_nodes=[AsteriskNode(ari_url=f"http://127.0.0.1:{port_base + 8088}/ari")],
        sip_port=port_base + 5060,
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
