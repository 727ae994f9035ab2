"""The agent's install, as far as this machine can prove it.

- Every dependency of the softphone resolves to wheels for Windows amd64 on Python 3.11 and 3.12
  (packaging/softphone/check_wheels.py: `pip download --only-binary=:all: --platform win_amd64`,
  with the target's markers evaluated through the whole closure). Wheels are cached on the machine
  (tests/utils/cache.py), so a second run, even from a fresh clone, is offline.
- The Linux one-command install (packaging/softphone/install.sh) in an empty home: the wheel built
  by packaging/softphone/build.py installs into its own virtualenv without the server's packages,
  the server's address is kept in the settings file, the launcher and the autostart entry exist,
  and the installed `warmline-softphone` starts far enough to read that setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import free_port
from tests.utils.cache import cache_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging" / "softphone"


def test_every_dependency_has_windows_wheels_for_python_311_and_312() -> None:
    wheel_cache = cache_dir("softphone-wheels")
    done = subprocess.run(
        [
            *(sys.executable, str(PACKAGING / "check_wheels.py"), "--platform", "win_amd64"),
            *(
                "--python",
                "3.11",
                "--python",
                "3.12",
                "--cache",
                str(wheel_cache),
            ),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for tag in ("cp311", "cp312"):
        wheels = {p.name.split("-")[0].lower() for p in wheel_cache.glob(f"win_amd64-{tag}/*.whl")}
        assert {"pjsua2_python", "cytolk", "comtypes", "sounddevice", "pydantic_core", "colorama"} <= wheels
        assert "python_xlib" not in wheels and "sqlalchemy" not in wheels


def test_linux_install_is_one_command_and_installs_only_the_softphone(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), "--out", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    wheel = Path(built.stdout.strip().splitlines()[-1])
    port = free_port()  # nothing listens: the test never leaves this machine
    closed = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PATH=f"{home / '.local/bin'}:/usr/local/bin:/usr/bin:/bin")
    env.setdefault(
        "PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")
    )  # the machine's cache, not the empty home's
    subprocess.run(
        ["bash", str(PACKAGING / "install.sh"), "--wheel", str(wheel), "--server", closed, "--autostart"],
        env=env,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=900,
    )
    venv = home / ".local/share/warmline/softphone-venv"
    config = home / ".config/warmline/softphone.toml"
    assert config.read_text("utf-8") == f'server = "{closed}"\n'
    assert (
        "warmline-softphone --open-page"
        in (home / ".config/autostart/warmline-softphone.desktop").read_text()
    )
    listed = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "warmline-softphone==0.1.0" in listed and "pjsua2-python" in listed and "python-xlib" in listed
    for server_only in ("sqlalchemy", "alembic", "psycopg", "argon2-cffi", "openpyxl", "uvloop"):
        assert f"{server_only}==" not in listed, f"{server_only} came with the softphone"
    launcher = home / ".local/bin/warmline-softphone"
    helped = subprocess.run(
        [str(launcher), "--help"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert "--hotkey" in helped.stdout and "--speech" in helped.stdout
    # The one setting is read: with the server from the file, the phone goes on to sign in (and
    # says the server cannot be reached: nothing listens there) instead of asking for --server.
    started = subprocess.run(
        [str(launcher), "--user", "mei", "--password-stdin", "--headless"],
        env=env,
        input="x\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode != 0
    assert f"127.0.0.1:{port}" in started.stderr and "No server" not in started.stderr, started.stderr
    # Run again (an update): the address is replaced, nothing else in the file is lost.
    config.write_text(config.read_text("utf-8") + '[hotkeys]\nhours = "off"\n', "utf-8")
    subprocess.run(
        [
            "bash",
            str(PACKAGING / "install.sh"),
            "--wheel",
            str(wheel),
            "--server",
            "https://cc2.example.org",
            "--no-autostart",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=900,
    )
    assert config.read_text("utf-8") == 'server = "https://cc2.example.org"\n[hotkeys]\nhours = "off"\n'
