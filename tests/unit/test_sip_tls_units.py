"""SIP over TLS without Asterisk: the lab's CA and server certificate, what the softphone makes of
the server's provisioning (TLS, the CA, SRTP by default), and its pjsua2 account configuration.
(tests/integration/test_sip_tls_lab.py registers and calls over TLS + SRTP for real.)"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import httpx
import pjsua2 as pj
from cryptography import x509

from softphone.account import SipAccountSettings, build_account_config
from softphone.provisioning import ServerClient
from warmline.lab.tls import ensure_lab_tls


def _names(cert: Path) -> list[str]:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in san]


def test_lab_ca_signs_a_server_certificate_for_the_sip_host(tmp_path: Path) -> None:
    tls = ensure_lab_tls(tmp_path / "tls", "192.0.2.10")
    assert oct(tls.ca_key.stat().st_mode & 0o777) == "0o600"
    assert oct(tls.server_key.stat().st_mode & 0o777) == "0o600"
    assert {"192.0.2.10", "127.0.0.1", "localhost"} <= set(_names(tls.server_cert))
    # What a client checks first: the server certificate is signed by the lab's CA.
    server = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    ca_first = tls.ca_cert.read_bytes()
    cert_first = tls.server_cert.read_bytes()

    again = ensure_lab_tls(tmp_path / "tls", "192.0.2.10")
    assert again.server_cert.read_bytes() == cert_first, "kept while valid and naming the host"
    moved = ensure_lab_tls(tmp_path / "tls", "sip.example.org")
    assert moved.ca_cert.read_bytes() == ca_first, "the CA stays: softphones keep trusting it"
    assert moved.server_cert.read_bytes() != cert_first and "sip.example.org" in _names(moved.server_cert)


def _provisioning(body: Mapping[str, object]) -> ServerClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        return httpx.Response(200, json=dict(body))

    return ServerClient("http://warmline.test", transport=httpx.MockTransport(handle))


SIP = {
    "endpoint": "ag0123456789ab",
    "username": "ag0123456789ab",
    "password": "s" * 32,
    "realm": "warmline",
    "registrar": "sips:sip.example.org:5061",
    "transport": "tls",
    "srtp": "mandatory",
    "ca_pem": "-----BEGIN CERTIFICATE-----\n...",
}


def test_softphone_takes_tls_the_ca_and_srtp_from_the_server() -> None:
    async def fetch(**kw: object) -> SipAccountSettings:
        client = _provisioning(SIP)
        await client.login("mei", "pw")
        try:
            return await client.sip_account(**kw)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    sip = asyncio.run(fetch())
    assert (sip.transport, sip.srtp, sip.host_port) == ("tls", "mandatory", ("sip.example.org", 5061))
    assert sip.ca_pem == SIP["ca_pem"] and sip.registrar_uri == "sips:sip.example.org:5061;transport=tls"
    assert sip.display_name == "mei" and sip.username == "ag0123456789ab"
    assert asyncio.run(fetch(srtp="optional")).srtp == "optional", "--srtp still overrides"
    assert "s" * 32 not in repr(sip) and "CERTIFICATE" not in repr(sip)


def test_account_config_requires_srtp_over_a_secure_first_hop() -> None:
    tls = SipAccountSettings("ag1", "pw", "sips:h:5061", transport="tls", srtp="mandatory")
    cfg = build_account_config(tls)
    assert cfg.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_MANDATORY
    assert cfg.mediaConfig.srtpSecureSignaling == 1
    assert not cfg.mediaConfig.lockCodecEnabled, "no extra UPDATE racing the agent's own re-INVITEs"
    plain = build_account_config(SipAccountSettings("ag1", "pw", "sip:h:5060"))
    assert (
        plain.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_DISABLED and plain.mediaConfig.srtpSecureSignaling == 0
    )
