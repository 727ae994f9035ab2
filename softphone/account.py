"""The SIP account: what to register where, and the pjsua2 account that reports registration.

`SipAccountSettings` is plain data (from provisioning). `build_account_config` turns it into a
pjsua2 `AccountConfig` with the product's choices: digest credentials held in memory only,
re-registration retries, NAT keepalives, contact/via rewriting behind NAT, SRTP.

Over TLS the server is verified against `ca_pem` (the CA the server provisions; None: the system's
trust store) and its name; SRTP then requires the secure first hop (`srtpSecureSignaling`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import pjsua2 as pj

from softphone.events import RegistrationChanged

Transport = Literal["udp", "tcp", "tls"]
Srtp = Literal["off", "optional", "mandatory"]
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


@dataclass(frozen=True)
class SipAccountSettings:
    username: str
    password: str = field(repr=False)
    registrar: str  # "sip:host:port" (a transport parameter in it is ignored; see `transport`)
    realm: str = "*"
    transport: Transport = "udp"
    srtp: Srtp = "off"
    display_name: str | None = None
    ca_pem: str | None = field(default=None, repr=False)  # PEM of the CA to verify a TLS server with
    register_expires: int = 120
    retry_interval: int = 5
    keepalive_interval: int = 15  # NAT keepalive (CRLF over UDP) seconds; 0 turns it off

    @property
    def host_port(self) -> tuple[str, int]:
        raw = self.registrar.removeprefix("sips:").removeprefix("sip:").split(";", 1)[0]
        parts = urlsplit(f"//{raw}")
        return parts.hostname or raw, parts.port or DEFAULT_PORTS[self.transport]

    @property
    def registrar_uri(self) -> str:
        host, port = self.host_port
        scheme = "sips" if self.transport == "tls" else "sip"
        return f"{scheme}:{host}:{port};transport={self.transport}"

    @property
    def id_uri(self) -> str:
        host, _ = self.host_port
        name = f'"{self.display_name}" ' if self.display_name else ""
        return f"{name}<sip:{self.username}@{host}>"

    def target_uri(self, target: str) -> str:
        """A dialable URI for an extension, a number or an endpoint name on this registrar."""
        if target.startswith(("sip:", "sips:")):
            return target
        host, port = self.host_port
        return f"sip:{target}@{host}:{port};transport={self.transport}"


SRTP_USE = {
    "off": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,
}


def build_account_config(s: SipAccountSettings) -> Any:
    cfg = pj.AccountConfig()
    cfg.idUri = s.id_uri
    cfg.regConfig.registrarUri = s.registrar_uri
    cfg.regConfig.timeoutSec = s.register_expires
    cfg.regConfig.retryIntervalSec = s.retry_interval
    cfg.regConfig.firstRetryIntervalSec = min(2, s.retry_interval)
    cfg.regConfig.dropCallsOnFail = False  # a registrar blip must not cut a call in progress
    cred = pj.AuthCredInfo("digest", s.realm, s.username, 0, s.password)
    cfg.sipConfig.authCreds.append(cred)
    cfg.sipConfig.proxies.append(f"{s.registrar_uri};lr")
    cfg.natConfig.udpKaIntervalSec = s.keepalive_interval
    cfg.natConfig.contactRewriteUse = 1
    cfg.natConfig.viaRewriteUse = 1
    cfg.natConfig.sdpNatRewriteUse = 0
    # No "lock codec" UPDATE after an answer that lists several codecs: it raced the agent's next
    # re-INVITE (a quick resume after hold was lost behind it), and Asterisk needs no lock.
    cfg.mediaConfig.lockCodecEnabled = False
    cfg.mediaConfig.srtpUse = SRTP_USE[s.srtp]
    # SDES keys travel in the SDP: with SRTP over TLS, insist the signalling hop is TLS too.
    cfg.mediaConfig.srtpSecureSignaling = 1 if s.transport == "tls" and s.srtp != "off" else 0
    return cfg


def system_ca_file() -> str:
    """The system's CA bundle (for a server with a public certificate and no CA provisioned)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


def tls_config(s: SipAccountSettings) -> Any:
    """A TLS transport configuration that verifies the server's certificate and name."""
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    if s.ca_pem:
        tcfg.tlsConfig.CaBuf = s.ca_pem
    else:
        tcfg.tlsConfig.CaListFile = system_ca_file()
    tcfg.tlsConfig.verifyServer = True
    tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
    return tcfg


RegHook = Callable[[RegistrationChanged], None]


class SoftAccount(pj.Account):  # type: ignore[misc]
    """A pjsua2 account whose callbacks become events; used on the pjsua2 thread only."""

    def __init__(
        self, name: str, on_registration: RegHook, on_incoming: Callable[[SoftAccount, Any], None]
    ) -> None:
        super().__init__()
        self.name = name
        self._on_registration = on_registration
        self._on_incoming = on_incoming

    def onRegState(self, prm: Any) -> None:
        info = self.getInfo()
        self._on_registration(
            RegistrationChanged(
                account=self.name,
                registered=bool(info.regIsActive) and 200 <= int(prm.code) < 300,
                code=int(prm.code),
                reason=str(prm.reason),
                expires=int(prm.expiration),
            )
        )

    def onIncomingCall(self, prm: Any) -> None:
        self._on_incoming(self, prm)
