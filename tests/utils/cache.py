"""Where tests keep downloads that outlive a clone (CI runs on a fresh clone of the same machine).

/var/cache/warmline when it can be written (root, as CI and `make` run), else the repo's ignored
.cache/ folder. Only things that are safe to reuse as they are go here (wheels by name and hash).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MACHINE_CACHE = Path("/var/cache/warmline")


def cache_dir(name: str) -> Path:
    """A cache folder named `name`, created if missing."""
    for base in (MACHINE_CACHE, REPO_ROOT / ".cache"):
        folder = base / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise RuntimeError(f"no writable cache folder for {name} under {MACHINE_CACHE} or .cache/")
