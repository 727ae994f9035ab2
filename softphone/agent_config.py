"""The agent's own settings file: the server's address (the one setting the installer asks for),
the remembered user name, and optional hot-key and speech choices.

    # %APPDATA%\\warmline\\softphone.toml on Windows, ~/.config/warmline/softphone.toml on Linux
    server = "https://cc.example.org"
    user = "mei"
    speech = "auto"            # auto, off, speechd, zdsr, tolk, sapi
    [hotkeys]                  # any of answer, hangup, hold, mute, repeat, status, hours
    answer = "Ctrl+Shift+F2"   # "off" turns one off

Command-line options win over the file. A mistake in the file is reported with its path (and line
for a TOML error) and the phone does not start half-configured.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.i18n import _
from softphone.speech import CHOICES

KNOWN = ("server", "user", "speech", "hotkeys")


class ConfigError(ValueError):
    """The settings file is wrong; the message names the file and what is wrong."""


@dataclass
class AgentConfig:
    server: str | None = None
    user: str | None = None
    speech: str | None = None
    hotkeys: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def default_config_path() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "warmline" / "softphone.toml"


def load_config(path: Path | None = None) -> AgentConfig:
    """The settings in `path` (default: the user's file); empty settings when there is no file."""
    path = path or default_config_path()
    if not path.exists():
        return AgentConfig(path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(_("{path}: {error}", path=path, error=exc)) from exc
    unknown = sorted(set(data) - set(KNOWN))
    if unknown:
        raise ConfigError(
            _(
                "{path}: unknown setting {name} (known: {known}).",
                path=path,
                name=unknown[0],
                known=", ".join(KNOWN),
            )
        )
    for name in ("server", "user", "speech"):
        if name in data and not isinstance(data[name], str):
            raise ConfigError(_("{path}: {name} must be text in quotes.", path=path, name=name))
    hotkeys = data.get("hotkeys", {})
    if not isinstance(hotkeys, dict) or not all(isinstance(v, str) for v in hotkeys.values()):
        raise ConfigError(_('{path}: [hotkeys] holds lines like answer = "Ctrl+Shift+F2".', path=path))
    speech = data.get("speech")
    if speech is not None and speech not in CHOICES:
        raise ConfigError(
            _("{path}: speech must be one of {choices}.", path=path, choices=", ".join(CHOICES))
        )
    return AgentConfig(
        server=data.get("server"), user=data.get("user"), speech=speech, hotkeys=dict(hotkeys), path=path
    )


def remember_user(config: AgentConfig, user: str) -> None:
    """Keep the user name for the next start (a top-level line; the rest of the file is untouched)."""
    if config.path is None or config.user == user:
        return
    config.path.parent.mkdir(parents=True, exist_ok=True)
    text = config.path.read_text(encoding="utf-8-sig") if config.path.exists() else ""
    kept = [line for line in text.splitlines() if not line.strip().startswith("user ")]
    # TOML strings accept JSON's escapes; the line goes first so it stays outside any [table].
    config.path.write_text(
        "\n".join([f"user = {json.dumps(user, ensure_ascii=False)}", *kept]) + "\n", "utf-8"
    )
    config.user = user
