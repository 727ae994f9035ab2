"""A bare SIP client over TLS for probing the lab as an attacker would: REGISTER with a user name
and a guessed password (digest, RFC 2617/7616 MD5), from a chosen loopback address.

    with SipProbe("127.0.0.1", tls_port, ca_file, source="127.0.0.2") as probe:
        answer = probe.register("ag12ab34cd56ef", "guess")   # the final answer: 401, 403, 200...
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


@dataclass
class SipAnswer:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)

    def shape(self) -> tuple[int, str, tuple[str, ...], tuple[str, ...]]:
        """What the answer reveals, with the per-request values (nonce, tags, ids) left out."""
        challenge = self.headers.get("www-authenticate", "")
        params = tuple(sorted(k for k, *_ in _PARAM.findall(challenge)))
        return self.status, self.reason, tuple(sorted(self.headers)), params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class SipProbe:
    def __init__(self, host: str, port: int, ca_file: Path, *, source: str = "127.0.0.1") -> None:
        self.host, self.port, self.source = host, port, source
        ctx = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.local_port = self.sock.getsockname()[1]
        self._buf = b""
        self._cseq = 0
        self.call_id = uuid.uuid4().hex

    def __enter__(self) -> SipProbe:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _read(self) -> SipAnswer | None:
        """The next response; None for a request from the server (a qualify OPTIONS: ignored)."""
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buf += chunk
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self._buf = rest[length:]
        if not lines[0].startswith("SIP/2.0 "):
            return None
        _version, code, reason = ([*lines[0].split(" ", 2), ""])[:3]
        return SipAnswer(int(code), reason, headers)

    def _send(self, user: str, authorization: str | None) -> SipAnswer:
        self._cseq += 1
        uri = f"sip:{self.host}:{self.port};transport=tls"
        me = f"sip:{user}@{self.host}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/TLS {self.source}:{self.local_port};rport;branch=z9hG4bK{uuid.uuid4().hex}",
            "Max-Forwards: 70",
            f"From: <{me}>;tag={uuid.uuid4().hex[:10]}",
            f"To: <{me}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self._cseq} REGISTER",
            f"Contact: <sip:{user}@{self.source}:{self.local_port};transport=tls>",
            "Expires: 60",
            "User-Agent: probe",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += ["Content-Length: 0", "", ""]
        self.sock.sendall("\r\n".join(lines).encode())
        while True:
            answer = self._read()
            if answer is not None and answer.status >= 200:
                return answer

    def register(self, user: str, password: str) -> list[SipAnswer]:
        """REGISTER, and again with digest credentials when challenged: every final answer."""
        first = self._send(user, None)
        if first.status != 401:
            return [first]
        challenge = dict((k, a or b) for k, a, b in _PARAM.findall(first.headers["www-authenticate"]))
        realm, nonce = challenge["realm"], challenge["nonce"]
        uri = f"sip:{self.host}:{self.port};transport=tls"
        ha1, ha2 = _md5(f"{user}:{realm}:{password}"), _md5(f"REGISTER:{uri}")
        auth = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
        if "auth" in challenge.get("qop", ""):
            cnonce, nc = uuid.uuid4().hex[:16], "00000001"
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            auth += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        auth += f', response="{response}"'
        if "opaque" in challenge:
            auth += f', opaque="{challenge["opaque"]}"'
        return [first, self._send(user, auth)]
