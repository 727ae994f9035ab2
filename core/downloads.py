"""The Content-Disposition of a download, for any file name (RFC 6266 with RFC 5987's `filename*`).

HTTP headers are Latin-1: a file named after a campaign called 流感回访 cannot go into
``filename="..."`` as it is (Starlette refuses it: a 500). So the header carries an ASCII fallback
for old clients and the real name, UTF-8 and percent-encoded, in ``filename*``, which every current
browser prefers:

    attachment; filename="_-contacts.csv"; filename*=UTF-8''%E6%B5%81%E6%84%9F%E5%9B%9E%E8%AE%BF-contacts.csv
"""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\;/]')


def content_disposition(file_name: str, *, inline: bool = False) -> str:
    """The header value that offers ``file_name`` (any characters) as a download."""
    kind = "inline" if inline else "attachment"
    name = file_name.replace("\r", "").replace("\n", "").replace("/", "_").replace("\\", "_") or "download"
    fallback = re.sub(r"_+", "_", _UNSAFE_ASCII.sub("_", name))
    if fallback == name:
        return f'{kind}; filename="{name}"'
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment(file_name: str) -> dict[str, str]:
    """Response headers that offer ``file_name`` as a download."""
    return {"Content-Disposition": content_disposition(file_name)}
