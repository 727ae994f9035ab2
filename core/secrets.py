"""Secrets generated on first use and kept in VAR_DIR/secrets.json with mode 0600.

There is no default password anywhere in warmline: the first process that needs a secret makes a
strong random one and every later process reads the same file.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

SECRETS_FILE = "secrets.json"


def _path(var_dir: Path) -> Path:
    return var_dir / SECRETS_FILE


def load_secrets(var_dir: Path) -> dict[str, str]:
    path = _path(var_dir)
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text())
    return data


def get_secret(var_dir: Path, name: str, nbytes: int = 24) -> str:
    """Return the named secret, creating it (and the file, 0600) if it does not exist yet."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = _path(var_dir)
    # O_EXCL lock file: two processes starting together must not each write a different secret.
    lock = path.with_suffix(".lock")
    for _ in range(200):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            time.sleep(0.01)
    else:
        raise RuntimeError(f"{lock} is held; remove it if no warmline process is running")
    try:
        os.close(fd)
        data = load_secrets(var_dir)
        if name not in data:
            data[name] = secrets.token_urlsafe(nbytes)
            tmp = path.with_suffix(".tmp")
            tmp.touch(mode=0o600)
            os.chmod(tmp, 0o600)
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, path)
        return data[name]
    finally:
        lock.unlink(missing_ok=True)
