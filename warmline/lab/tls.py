"""The lab's own certificate authority and SIP server certificate, for SIP over TLS.

Home agents register over TLS (SIPS) with SRTP media; the lab does the same, with a CA made on
first start under ``<lab_dir>/tls``::

    ca.pem      the CA certificate: softphones verify the server with it (provisioning hands it out)
    ca.key      the CA's private key (0600): only used to sign the server certificate
    server.pem  the server certificate (names: the SIP host, localhost, 127.0.0.1), signed by the CA
    server.key  its private key (0600), read by Asterisk's TLS transport

The CA lasts ten years, the server certificate one year; a server certificate that is about to
expire, or that does not name the current SIP host, is made again at the next start (the CA stays,
so softphones that trust it keep working). Production uses real certificates instead (docker/).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class LabTls:
    """Where the lab's TLS files are."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca(tls: LabTls) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warmline lab CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(tls.ca_key, _key_pem(key), 0o600)
    _write(tls.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host and host != "localhost":
            names.insert(0, x509.DNSName(host))
    else:
        if str(address) != "127.0.0.1":
            names.insert(0, x509.IPAddress(address))
    return names


def _server_ok(tls: LabTls, host: str) -> bool:
    if not (tls.server_cert.exists() and tls.server_key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return all(name in san for name in _names(host))


def _make_server(tls: LabTls, host: str) -> None:
    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(tls.server_key, _key_pem(key), 0o600)
    _write(tls.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_lab_tls(folder: Path, host: str) -> LabTls:
    """Make the CA (once) and a server certificate naming `host` (when missing, stale or due)."""
    tls = LabTls(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if not (tls.ca_cert.exists() and tls.ca_key.exists()):
        _make_ca(tls)
        tls.server_cert.unlink(missing_ok=True)
    if not _server_ok(tls, host):
        _make_server(tls, host)
    return tls
