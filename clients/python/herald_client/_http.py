"""One HTTP exchange with herald over `http.client`: a connection per
request, so a `Client` can be shared between threads without a lock, and
a watch owns the socket it may need to shut from another thread."""

import http.client
import json
import ssl
from urllib.parse import urlsplit

from .errors import HeraldError


class Target:
    """Where requests go: scheme, host, port, and the path herald is
    served under (empty, or a proxy's prefix such as ``/herald``)."""

    def __init__(self, base_url, ssl_context=None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"a base URL has no query or fragment: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.ssl_context = ssl_context

    def connect(self, timeout):
        if self.https:
            context = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def encode_json(value):
    """JSON as herald reads it: UTF-8, and no NaN or Infinity (not JSON)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8")


def exchange(target, method, path, *, headers, body=None, timeout):
    """Sends one request and reads the whole answer: ``(status, reason,
    headers, body)``. Transport failures are raised as they come
    (`OSError`, `http.client.HTTPException`)."""
    conn = target.connect(timeout)
    try:
        conn.request(method, target.prefix + path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.reason, resp.headers, data
    finally:
        conn.close()


def answer(status, reason, headers, data):
    """The JSON of a 2xx answer (`None` when it has no body); a
    `HeraldError` for anything else."""
    if not 200 <= status < 300:
        raise HeraldError.from_response(status, reason, headers, data)
    if not data.strip():
        return None
    return json.loads(data.decode("utf-8"))
