"""One settings object for every component, read from `WARMLINE_*` environment variables or `.env`.

Defaults need nothing installed beyond what `make` sets up: SQLite under ./var, Mosquitto on
loopback, and the lab's Asterisk. Secrets are never defaulted: see `core.secrets`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AsteriskNode(BaseModel):
    """One Asterisk reachable over ARI. Credentials absent here come from the lab's secrets."""

    name: str = "lab"
    ari_url: str = "http://127.0.0.1:18088/ari"
    ari_user: str = "warmline"
    ari_password: str | None = None
    app: str = "warmline"
    # The Asterisk Manager Interface (core.ami): used only to start and stop MixMonitor on a call
    # in Stasis (a nailed call's recording, agents.handover.nailed_recording). ami_port None: no
    # AMI on this node (nailed calls are recorded by ARI snoops instead). The secret, like the ARI
    # password, comes from the lab's secrets when absent here.
    ami_host: str = "127.0.0.1"
    ami_port: int | None = 15038
    ami_user: str = "warmline"
    ami_secret: str | None = None
    # Where warmline writes provisioned config for this node (e.g. pjsip_agents.conf);
    # None means the lab's own config folder.
    config_dir: Path | None = None
    # How the dialer reaches a number: {number} is the E.164 digits without '+'.
    # Production: "PJSIP/{number}@carrier".
    dial_template: str = "Local/{number}@lab-pstn"
    # Calls this node may carry at once (the dialer never originates beyond it).
    max_channels: int = 200
    # Asterisk's security log of this node (logger.conf: security.log => security), which the SIP
    # guard reads; None means the lab's own log folder.
    security_log: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WARMLINE_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    var_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite at VAR_DIR/warmline.db"
    )
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    topic_prefix: str = "warmline"
    asterisk_nodes: list[AsteriskNode] = Field(default_factory=lambda: [AsteriskNode()])
    # Where agents' softphones register (the address they can reach, not necessarily loopback).
    sip_host: str = "127.0.0.1"
    sip_port: int = 15060
    # Agents register over TLS (SIPS) with SRTP media: the TLS port (None: sip_port + 1) and the CA
    # certificate softphones verify the server with (None: the lab's own CA; a public CA needs none).
    sip_tls_port: int | None = None
    sip_ca_file: Path | None = None
    # SIP guard (agents.sip_guard): this many failed sign-ins from one address within the window
    # block it for block_minutes (0: until `warmline sip unblock`).
    sip_guard_max_failures: int = 5
    sip_guard_window_seconds: float = 300
    sip_guard_block_minutes: float = 60
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    token_ttl_hours: int = 12
    # Sign-in throttling (core.auth.throttle): failures allowed per account and per address before
    # each further one locks the key, the first lock (seconds, doubled per failure) and the longest.
    signin_account_tries: int = 5
    signin_address_tries: int = 20
    signin_lock_seconds: int = 30
    signin_max_lock_minutes: int = 15
    # Console sessions (core.auth.sessions): signed out after this long without a request; their
    # token replaced by a new one this often (the old one works a short grace longer).
    session_idle_minutes: int = 30
    session_rotate_minutes: int = 15
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR
    # networks; "*" for any): behind one, the client's address is the one throttled and a request
    # that reached the proxy over HTTPS gets Secure cookies and HSTS. Empty: no forwarded header is
    # believed (a client could otherwise claim any address).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Secure cookies even when no request says HTTPS (a proxy that sends no X-Forwarded-Proto).
    cookie_secure: bool = False
    # The centre's time zone: every date and time a person reads is on this clock (core.formats).
    timezone: str = "Asia/Shanghai"
    default_region: str = "CN"
    # Elder-welfare escalation: every new alert is also POSTed (JSON) here when set.
    welfare_webhook_url: str | None = None
    welfare_webhook_attempts: int = 5
    # Inbound hotline numbers (number -> flow, skill, opening hours); see config/inbound/.
    inbound_config: Path = Path(__file__).resolve().parent.parent / "config" / "inbound" / "hotline.yaml"
    # The dialer worker runs inside `warmline up` (tests and API-only processes turn it off).
    dialer_enabled: bool = True
    # Seconds between the dialer's passes over running campaigns, and between published figures.
    dialer_tick: float = 0.2
    dialer_stats_every: float = 3.0
    # Seconds a callee may ring before the originate gives up (outcome no_answer).
    dialer_ring_timeout: int = 30
    # Agents kept on the line (agents/handover/nailed.py, docs/pacing.md): a free agent of a
    # progressive or predictive campaign is called once and kept in a holding bridge, so a live
    # answer reaches them with no ring. On by default; a campaign says `nailed: false` to ring its
    # agents instead, and false here turns it off for the whole service.
    dialer_nailed_agents: bool = True
    # ARI faults (docs/faults.md): an ARI request slower than `dialer_ari_slow` seconds makes the
    # dialer start fewer calls (dialer/engine/pressure.py); one unanswered after `dialer_ari_timeout`
    # seconds is a timeout (an originate then is reconciled against Asterisk's channels).
    dialer_ari_slow: float = 2.0
    dialer_ari_timeout: float = 10.0
    # One dialer worker per Asterisk node: the node's lease (dialer/engine/lease.py) lasts this many
    # seconds, renewed by its holder; another worker waits until it is released or runs out.
    dialer_lease_seconds: float = 30.0
    # Help in a hard call (agents.help): minutes an agent rests after flagging an abusive call,
    # offered no call meanwhile.
    help_cooldown_minutes: float = 5
    # ... also after a call escalated to a supervisor (the help key pressed on it), and after a call
    # longer than `long_call_minutes` (None: no limit); the supervisor is asked to check in.
    escalated_cooldown_minutes: float = 5
    long_call_minutes: float | None = 30
    long_call_cooldown_minutes: float = 5
    # A post-call survey score at or above this is a compliment: the agent hears of it on My day.
    survey_compliment_score: int = 5
    # A preview contact stays reserved to the agent it was shown to this long (then others may get it).
    preview_hold_seconds: int = 180
    # Seconds an agent's phone rings for a call they placed before the call is given up.
    agent_ring_timeout: int = 30
    # Recordings: encrypted at rest (AES-256-GCM, keys from the keyring, core.keyring) unless turned
    # off; kept this many days when their campaign sets no retention of its own (None: kept forever).
    recordings_encrypt: bool = True
    recordings_retention_days: int | None = None
    # The keyring (0600) that holds the keys of data encrypted at rest; default VAR_DIR/keys/keyring.json.
    # Production: another volume than the recordings (or a secrets mount), so one copy is not both.
    keyring_file: Path | None = None
    # Prompts spoken with a contact's own fields (a name) are kept this many hours, then purged.
    personal_prompt_hours: float = 24.0
    # A request body (an upload: a list and its do-not-call file) larger than this is refused (413).
    max_request_mb: int = 1040
    # Seconds between the service's retention passes (recordings past retention, personal prompts).
    retention_every_s: float = 3600.0
    # The hours the law counts (workforce/hours.py), in `timezone`: the night span (HH:MM, may cross
    # midnight), the logged-out gap that ends a shift, overtime limits in hours, and the scheme:
    # "standard" (day and week limits) or "comprehensive" (one limit for the whole period).
    hours_night_start: str = "22:00"
    hours_night_end: str = "06:00"
    hours_shift_gap_minutes: float = 30
    hours_day_limit: float = 8
    hours_week_limit: float = 40
    hours_scheme: Literal["standard", "comprehensive"] = "standard"
    hours_period_limit: float = 166.6
    # An agent and their supervisors are warned when a shift-day comes this close to overtime.
    hours_warn_before_minutes: float = 30
    # Break minutes each agent may take per shift (workforce.breaks); more is shown as over.
    break_allowance_minutes: float = 30

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'warmline.db').resolve()}"

    @property
    def sips_port(self) -> int:
        """The port agents' softphones reach SIP over TLS on."""
        return self.sip_tls_port if self.sip_tls_port is not None else self.sip_port + 1

    @property
    def lab_dir(self) -> Path:
        return self.var_dir / "lab"

    @property
    def recordings_dir(self) -> Path:
        return self.var_dir / "recordings"

    @property
    def keyring_path(self) -> Path:
        return self.keyring_file or self.var_dir / "keys" / "keyring.json"

    def node_config_dir(self, node: AsteriskNode) -> Path:
        return node.config_dir or self.lab_dir / "etc" / "asterisk"

    def node_security_log(self, node: AsteriskNode) -> Path:
        return node.security_log or self.lab_dir / "log" / "security.log"

    def node_ari_password(self, node: AsteriskNode) -> str:
        """The node's ARI password; the lab's is generated on first use, never defaulted."""
        if node.ari_password:
            return node.ari_password
        from core.secrets import get_secret

        return get_secret(self.var_dir, "ari_password")

    def node_ami_secret(self, node: AsteriskNode) -> str:
        """The node's AMI secret; the lab's is generated on first use, never defaulted."""
        if node.ami_secret:
            return node.ami_secret
        from core.secrets import get_secret

        return get_secret(self.var_dir, "ami_secret")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
