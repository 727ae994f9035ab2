"""The lab: a complete test world on one machine (Asterisk on loopback, simulated callees).

Public API: :func:`lab_start`, :func:`lab_stop`, :func:`lab_status`, :func:`asterisk_command`,
:class:`LabStatus`, :class:`LabError`.
"""

from warmline.lab.asterisk import (
    AsteriskInstall,
    LabError,
    LabStatus,
    asterisk_command,
    find_asterisk,
    lab_start,
    lab_status,
    lab_stop,
    render_config,
)

__all__ = [
    "AsteriskInstall",
    "LabError",
    "LabStatus",
    "asterisk_command",
    "find_asterisk",
    "lab_start",
    "lab_status",
    "lab_stop",
    "render_config",
]
