"""The lab's Asterisk: find it, render its configuration, run it as a daemon, stop it.

Run folder (``settings.lab_dir``)::

    etc/asterisk/   rendered from config/asterisk/ on every start (pjsip_agents.conf is kept)
    share/          astdatadir: links into the installation, plus sounds -> ../sounds
    sounds/         en (link to the stock prompts), silence/, warmline/ (espeak-ng), moh/
    spool/          astspooldir; spool/recording and spool/monitor -> settings.recordings_dir
    run/ log/ lib/ cache/

Asterisk itself comes from ``WARMLINE_ASTERISK_ROOT``, the Debian sid root that
scripts/install-asterisk.sh builds (run through the root's own loader, no chroot), or an
``asterisk`` on PATH — the same order the install script uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import jinja2
from pydantic import BaseModel

from core.secrets import get_secret
from core.settings import AsteriskNode, Settings
from warmline.lab import prompts
from warmline.lab.tls import LabTls, ensure_lab_tls

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "config" / "asterisk"
DEFAULT_AMI_PORT = 15038
DEFAULT_ROOTS = (Path("/var/cache/warmline/sid-root"), REPO_ROOT / ".cache" / "sid-root")
AGENTS_FILE = "pjsip_agents.conf"
TRUNK_FILE = "pjsip_lab_trunk.conf"  # the lab's SIPp trunk; pjsip.conf includes it if present
SECURITY_LOG = "security.log"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_ARCH = {
    "x86_64": ("lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
    "aarch64": ("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu"),
}


class LabError(RuntimeError):
    """The lab cannot be started or stopped; the message says why and where to look."""


class LabStatus(BaseModel):
    state: Literal["running", "stopped"]
    pid: int | None = None
    ari_url: str
    ari_user: str
    ari_password: str
    app: str
    ami_port: int | None = None  # AMI on 127.0.0.1 (manager.conf); None: off
    sip_host: str
    sip_port: int
    sip_tls_port: int
    ca_file: Path
    security_log: Path
    run_dir: Path
    config_dir: Path
    sounds_dir: Path
    recordings_dir: Path
    asterisk_version: str | None = None
    command: list[str]


@dataclass(frozen=True)
class AsteriskInstall:
    """How to run one Asterisk installation and where its modules and stock data live."""

    command: list[str]
    mod_dir: Path
    data_dir: Path
    sbin_dir: Path
    root: Path | None = None


# ---------------------------------------------------------------- finding Asterisk


def _root_install(root: Path) -> AsteriskInstall | None:
    binary = root / "usr/sbin/asterisk"
    loader, triplet = _ARCH.get(platform.machine(), _ARCH["x86_64"])
    if not binary.exists() or not (root / loader).exists():
        return None
    libs = f"{root}/usr/lib/{triplet}:{root}/lib/{triplet}"
    return AsteriskInstall(
        command=[str(root / loader), "--library-path", libs, str(binary)],
        mod_dir=root / f"usr/lib/{triplet}/asterisk/modules",
        data_dir=root / "usr/share/asterisk",
        sbin_dir=root / "usr/sbin",
        root=root,
    )


def _path_install(binary: str) -> AsteriskInstall:
    _loader, triplet = _ARCH.get(platform.machine(), _ARCH["x86_64"])
    mods = [
        Path(f"/usr/lib/{triplet}/asterisk/modules"),
        Path("/usr/lib/asterisk/modules"),
        Path("/usr/lib64/asterisk/modules"),
    ]
    mod_dir = next((p for p in mods if p.is_dir()), mods[0])
    data = [Path("/usr/share/asterisk"), Path("/var/lib/asterisk")]
    data_dir = next((p for p in data if (p / "sounds").is_dir()), data[0])
    return AsteriskInstall([binary], mod_dir, data_dir, Path(binary).resolve().parent)


def find_asterisk() -> AsteriskInstall:
    """WARMLINE_ASTERISK_ROOT, then a sid root install-asterisk.sh built, then ``asterisk`` on PATH."""
    env_root = os.environ.get("WARMLINE_ASTERISK_ROOT")
    if env_root:
        found = _root_install(Path(env_root))
        if found is None:
            raise LabError(f"WARMLINE_ASTERISK_ROOT={env_root} has no usr/sbin/asterisk")
        return found
    for root in DEFAULT_ROOTS:
        found = _root_install(root)
        if found is not None:
            return found
    on_path = shutil.which("asterisk")
    if on_path:
        return _path_install(on_path)
    raise LabError("no Asterisk found: run scripts/install-asterisk.sh (or set WARMLINE_ASTERISK_ROOT)")


def asterisk_command(settings: Settings) -> list[str]:
    """The command line that runs the lab's Asterisk against its rendered asterisk.conf."""
    return [*find_asterisk().command, "-C", str(_paths(settings).asterisk_conf)]


def asterisk_version(install: AsteriskInstall | None = None) -> str | None:
    try:
        install = install or find_asterisk()
        proc = subprocess.run([*install.command, "-V"], capture_output=True, text=True, timeout=10)
    except (LabError, OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


# ---------------------------------------------------------------- layout and ports


@dataclass(frozen=True)
class _Paths:
    run_dir: Path

    @property
    def etc(self) -> Path:
        return self.run_dir / "etc" / "asterisk"

    @property
    def asterisk_conf(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def sounds(self) -> Path:
        return self.run_dir / "sounds"

    @property
    def share(self) -> Path:
        return self.run_dir / "share"

    @property
    def spool(self) -> Path:
        return self.run_dir / "spool"

    @property
    def rundir(self) -> Path:
        return self.run_dir / "run"

    @property
    def log(self) -> Path:
        return self.run_dir / "log"

    @property
    def pid_file(self) -> Path:
        return self.rundir / "warmline-lab.pid"

    @property
    def tls(self) -> LabTls:
        return LabTls(self.run_dir / "tls")


def _paths(settings: Settings) -> _Paths:
    return _Paths(settings.lab_dir.resolve())


def lab_node(settings: Settings) -> AsteriskNode:
    """The Asterisk node the lab plays: the one named "lab", else the first."""
    nodes = settings.asterisk_nodes or [AsteriskNode()]
    return next((n for n in nodes if n.name == "lab"), nodes[0])


def _ari_password(settings: Settings, node: AsteriskNode) -> str:
    return node.ari_password or get_secret(settings.var_dir, "ari_password")


def _ari_host_port(node: AsteriskNode) -> tuple[str, int]:
    parts = urlsplit(node.ari_url)
    return parts.hostname or "127.0.0.1", parts.port or 18088


def _ami_port(node: AsteriskNode) -> int:
    """The lab's AMI port (with no AMI port configured, AMI is off and this is only written)."""
    return node.ami_port if node.ami_port is not None else DEFAULT_AMI_PORT


def _sip(settings: Settings) -> tuple[str, int]:
    host = str(getattr(settings, "sip_host", "127.0.0.1"))
    port = int(getattr(settings, "sip_port", 15060))
    return host, port


def _bind_address(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1"
    return host


def _rtp_range() -> tuple[int, int]:
    return int(os.environ.get("WARMLINE_LAB_RTP_START", "31000")), int(
        os.environ.get("WARMLINE_LAB_RTP_END", "31999")
    )


# ---------------------------------------------------------------- preparing the run folder


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target)


def _prepare_dirs(settings: Settings, install: AsteriskInstall, paths: _Paths) -> None:
    recordings = settings.recordings_dir.resolve()
    for d in (
        paths.etc,
        paths.sounds,
        paths.share,
        paths.spool,
        paths.rundir,
        paths.log,
        paths.run_dir / "lib" / "keys",
        paths.run_dir / "cache",
        paths.spool / "lab-voicemail",
        recordings,
    ):
        d.mkdir(parents=True, exist_ok=True)
    # astdatadir: the installation's stock data, with our own sounds folder in place of its own.
    for entry in install.data_dir.iterdir():
        if entry.name != "sounds":
            _link(paths.share / entry.name, entry)
    _link(paths.share / "sounds", paths.sounds)
    stock_en = _stock_prompts(install)
    if stock_en is not None:
        _link(paths.sounds / "en", stock_en)
    # ARI stored recordings (spool/recording) and MixMonitor's relative names (spool/monitor).
    _link(paths.spool / "recording", recordings)
    _link(paths.spool / "monitor", recordings)
    agents = paths.etc / AGENTS_FILE
    if not agents.exists():
        agents.write_text("; provisioned by warmline from the database\n")


def _stock_prompts(install: AsteriskInstall) -> Path | None:
    """The English core sounds; Debian's sounds/en is an absolute link that only works in a chroot."""
    sounds = install.data_dir / "sounds"
    for candidate in [*sorted(sounds.glob("en_US_f_*")), sounds / "en"]:
        target = candidate
        if candidate.is_symlink() and install.root is not None:
            dest = Path(os.readlink(candidate))
            if dest.is_absolute():
                target = install.root / dest.relative_to("/")
                if target.is_symlink() and Path(os.readlink(target)).is_absolute():
                    target = install.root / Path(os.readlink(target)).relative_to("/")
        if target.is_dir():
            return target
    return None


def _context(settings: Settings, install: AsteriskInstall, paths: _Paths) -> dict[str, object]:
    node = lab_node(settings)
    ari_host, ari_port = _ari_host_port(node)
    sip_host, sip_port = _sip(settings)
    rtp_start, rtp_end = _rtp_range()
    tls = ensure_lab_tls(paths.tls.folder, sip_host)
    return {
        "etc_dir": paths.etc,
        "mod_dir": install.mod_dir,
        "lib_dir": paths.run_dir / "lib",
        "data_dir": paths.share,
        "spool_dir": paths.spool,
        "run_dir": paths.rundir,
        "log_dir": paths.log,
        "cache_dir": paths.run_dir / "cache",
        "sbin_dir": install.sbin_dir,
        "sounds_dir": paths.sounds,
        "recordings_dir": settings.recordings_dir.resolve(),
        "voicemail_dir": paths.spool / "lab-voicemail",
        "max_calls": 2000,
        "ari_host": _bind_address(ari_host),
        "ari_port": ari_port,
        "ari_user": node.ari_user,
        "ari_password": _ari_password(settings, node),
        "app": node.app,
        # AMI (manager.conf): loopback only, for warmline's own MixMonitor requests; off when the
        # node has no AMI port.
        "ami_enabled": "yes" if node.ami_port is not None else "no",
        "ami_host": "127.0.0.1",
        "ami_port": _ami_port(node),
        "ami_user": node.ami_user,
        "ami_secret": settings.node_ami_secret(node),
        "ami_permit": "127.0.0.1/255.255.255.255",
        "sip_bind": _bind_address(sip_host),
        "sip_port": sip_port,
        # Plain SIP never leaves the machine in the lab: agents use TLS on sip_bind.
        "plain_sip_bind": "127.0.0.1",
        "sip_tls_port": settings.sips_port,
        "tls_cert_file": tls.server_cert,
        "tls_key_file": tls.server_key,
        "rtp_start": rtp_start,
        "rtp_end": rtp_end,
    }


def render_config(settings: Settings, install: AsteriskInstall | None = None) -> Path:
    """Render every template into the lab's etc/asterisk (never touching pjsip_agents.conf)."""
    install = install or find_asterisk()
    paths = _paths(settings)
    _prepare_dirs(settings, install, paths)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Asterisk config, not HTML
    )
    ctx = _context(settings, install, paths)
    for template in sorted(TEMPLATES_DIR.glob("*.conf")):
        if template.name == AGENTS_FILE:
            continue
        text = env.get_template(template.name).render(ctx)
        target = paths.etc / template.name
        tmp = target.with_suffix(".conf.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(target)
    _write_lab_trunk(paths.etc / TRUNK_FILE, _sip(settings)[1] + 2)
    return paths.etc


def _write_lab_trunk(target: Path, port: int) -> None:
    """The lab's SIP trunk to a far end played by SIPp (Debian's sip-tester), for the load bench
    (tests/bench/test_load_bench.py, dial_template "PJSIP/{number}@lab-sipp"): SIPp's UAS listens on
    plain SIP port + 2 (tests/lab.py, LabPorts.far_end); nothing listens there unless a bench starts
    it. Written in the lab only (not a template: the Asterisk image renders config/asterisk/ and
    must not get it). Outbound only: no identify section, so a request from that port is challenged
    like any other; in-dialog requests (the far end's BYE) follow their dialog."""
    target.write_text(
        "; the lab's trunk to SIPp, written by warmline/lab/asterisk.py on every start\n"
        "[lab-sipp]\ntype = endpoint\ncontext = lab-from-trunk\ntransport = transport-udp\n"
        "disallow = all\nallow = ulaw\naors = lab-sipp\ndirect_media = no\nrtp_symmetric = yes\n"
        "send_pai = no\ntrust_id_outbound = no\nallow_subscribe = no\n\n"
        f"[lab-sipp]\ntype = aor\ncontact = sip:127.0.0.1:{port}\n"
    )


# ---------------------------------------------------------------- process management


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _status = os.waitpid(pid, os.WNOHANG)  # reap our own exited child
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _running_pid(paths: _Paths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return pid
    return pid if str(paths.asterisk_conf) in cmdline else None


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.run_dir / ".lab.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ari_ping(url: str, user: str, password: str, timeout: float = 1.0) -> bool:
    try:
        resp = httpx.get(f"{url.rstrip('/')}/asterisk/ping", auth=(user, password), timeout=timeout)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def _port_busy(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _udp_busy(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _check_ports(settings: Settings) -> None:
    """Refuse to start over another program's ports (a second lab, a real Asterisk)."""
    ari_host, ari_port = _ari_host_port(lab_node(settings))
    sip_host, sip_port = _sip(settings)
    busy = []
    if _port_busy(_bind_address(ari_host), ari_port):
        busy.append(f"ARI/HTTP {ari_port}/tcp (WARMLINE_ASTERISK_NODES)")
    ami_port = lab_node(settings).ami_port
    if ami_port is not None and _port_busy("127.0.0.1", ami_port):
        busy.append(f"AMI {ami_port}/tcp (WARMLINE_ASTERISK_NODES)")
    if _udp_busy("127.0.0.1", sip_port) or _port_busy("127.0.0.1", sip_port):
        busy.append(f"SIP {sip_port} (WARMLINE_SIP_PORT)")
    if _port_busy(_bind_address(sip_host), settings.sips_port):
        busy.append(f"SIP/TLS {settings.sips_port}/tcp (WARMLINE_SIP_TLS_PORT)")
    if busy:
        raise LabError(f"already in use by another program: {', '.join(busy)}; choose other ports")


def _log_tail(paths: _Paths, lines: int = 15) -> str:
    for name in ("console.log", "messages.log"):
        path = paths.log / name
        if path.exists() and path.stat().st_size:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log output)"


def _spawn(install: AsteriskInstall, paths: _Paths) -> int:
    if len(str(paths.rundir / "asterisk.ctl")) > 100:
        raise LabError(f"lab folder path too long for Asterisk's control socket: {paths.rundir}")
    argv = [*install.command, "-C", str(paths.asterisk_conf), "-f", "-n"]
    with open(paths.log / "console.log", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=paths.run_dir,
            close_fds=True,
        )
    paths.pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _wait_ready(pid: int, status: LabStatus, paths: _Paths) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise LabError(f"Asterisk exited during start-up; {paths.log}:\n{_log_tail(paths)}")
        if _ari_ping(status.ari_url, status.ari_user, status.ari_password, timeout=0.5):
            return
        time.sleep(0.1)
    raise LabError(f"ARI did not answer at {status.ari_url} within {START_TIMEOUT:.0f} s; see {paths.log}")


def _status(settings: Settings, pid: int | None, install: AsteriskInstall | None) -> LabStatus:
    node = lab_node(settings)
    paths = _paths(settings)
    sip_host, sip_port = _sip(settings)
    command = [*install.command, "-C", str(paths.asterisk_conf)] if install else []
    return LabStatus(
        state="running" if pid else "stopped",
        pid=pid,
        ari_url=node.ari_url,
        ari_user=node.ari_user,
        ari_password=_ari_password(settings, node),
        app=node.app,
        ami_port=node.ami_port,
        sip_host=sip_host,
        sip_port=sip_port,
        sip_tls_port=settings.sips_port,
        ca_file=paths.tls.ca_cert,
        security_log=paths.log / SECURITY_LOG,
        run_dir=paths.run_dir,
        config_dir=paths.etc,
        sounds_dir=paths.sounds,
        recordings_dir=settings.recordings_dir.resolve(),
        asterisk_version=asterisk_version(install) if install else None,
        command=command,
    )


def _find_or_none() -> AsteriskInstall | None:
    try:
        return find_asterisk()
    except LabError:
        return None


def lab_status(settings: Settings) -> LabStatus:
    """Whether the lab's Asterisk runs, and how to reach it (works when stopped)."""
    return _status(settings, _running_pid(_paths(settings)), _find_or_none())


def lab_start(settings: Settings) -> LabStatus:
    """Render config and prompts, start Asterisk in the background, wait for ARI. Idempotent."""
    paths = _paths(settings)
    install = find_asterisk()
    with _locked(paths):
        pid = _running_pid(paths)
        if pid is not None:
            return _status(settings, pid, install)
        render_config(settings, install)
        try:
            prompts.make_all(paths.sounds)
        except prompts.PromptError as exc:
            raise LabError(str(exc)) from exc
        status = _status(settings, None, install)
        _check_ports(settings)
        pid = _spawn(install, paths)
        try:
            _wait_ready(pid, status, paths)
        except LabError:
            _terminate(pid, paths, install)
            raise
    return status.model_copy(update={"state": "running", "pid": pid})


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _terminate(pid: int, paths: _Paths, install: AsteriskInstall | None) -> None:
    if install is not None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [*install.command, "-C", str(paths.asterisk_conf), "-rx", "core stop now"],
                capture_output=True,
                timeout=STOP_TIMEOUT,
                check=False,
            )
        if _wait_gone(pid, STOP_TIMEOUT):
            return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, wait):
            return
    raise LabError(f"Asterisk (pid {pid}) would not stop")


def lab_stop(settings: Settings) -> LabStatus:
    """Stop the lab's Asterisk gracefully (core stop now, then SIGTERM, then SIGKILL). Idempotent."""
    paths = _paths(settings)
    install = _find_or_none()
    with _locked(paths):
        pid = _running_pid(paths)
        if pid is not None:
            _terminate(pid, paths, install)
        paths.pid_file.unlink(missing_ok=True)
    return _status(settings, None, install)
