"""`Herald-Signature`, as herald signs step calls, compensations, pushed
events and webhooks (`herald_core::signature`, read line by line):

    Herald-Signature: t=<unix seconds>,v2=<hex>

where the hex is HMAC-SHA256 with the service's secret over

    <t>\\n<METHOD>\\n<path-and-query>\\n<body>

`<path-and-query>` is the request target as it came on the request line
(``/payment/charge?x=1``), so a signed body is good only at the endpoint
and with the method it was sent to. `verify` recomputes the MAC, compares
in constant time, and refuses a `t` more than `TOLERANCE_SECS` from now
either way (a replay, or one dated ahead to be replayed later). Only
``v2`` counts: the earlier ``v1`` (over ``<t>.<body>``) is refused.
"""

import hashlib
import hmac
import re
import time

from .errors import SignatureError

#: The header that carries the signature (HTTP header names are case-insensitive).
HEADER = "Herald-Signature"

#: How far from now, either way, a signed request may be dated.
TOLERANCE_SECS = 300

# What Rust's `i64::from_str` takes: an optional sign, then ASCII digits.
_I64 = re.compile(r"[+-]?[0-9]+")
# What the `hex` crate decodes: pairs of hex digits, either case.
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_I64_RANGE = range(-(2**63), 2**63)


def sign(secret, timestamp, method, target, body):
    """The header value for `body` sent as ``method target`` at
    `timestamp` (unix seconds): what herald sends. For tests, and for
    services that call each other the way herald calls them."""
    digest = _mac(_bytes(secret), int(timestamp), _bytes(method), _bytes(target), _bytes(body)).hexdigest()
    return f"t={int(timestamp)},v2={digest}"


def verify(secret, header, method, target, body, now=None, tolerance=TOLERANCE_SECS):
    """Checks a received `Herald-Signature` against the request it came
    with: its method, its target (path and query, as received; pass the
    raw bytes of the request line's target if you have them), and its
    body. Returns ``None``; raises `SignatureError` with its `reason`.

    `now` is unix seconds (default: the clock); `tolerance`, how far
    from it `t` may be, either way. The checks run in herald's order:
    the header's form, then the MAC, then the time.
    """
    if header is None:
        raise SignatureError(SignatureError.MALFORMED)
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    timestamp = None
    signatures = []
    for part in header.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq:
            continue
        if key == "t":
            timestamp = _parse_i64(value)
        elif key == "v2":
            if not _HEX.fullmatch(value):
                raise SignatureError(SignatureError.MALFORMED)
            signatures.append(bytes.fromhex(value))
    method, target = _bytes(method), _bytes(target)
    if timestamp is None or not signatures or b"\n" in method or b"\n" in target:
        raise SignatureError(SignatureError.MALFORMED)
    expected = _mac(_bytes(secret), timestamp, method, target, _bytes(body)).digest()
    # Every candidate is compared, so the time taken says nothing of which matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(SignatureError.MISMATCH)
    now = int(time.time()) if now is None else int(now)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(SignatureError.TOO_OLD if timestamp < now else SignatureError.FROM_THE_FUTURE)


def _mac(secret, timestamp, method, target, body):
    # herald writes the timestamp as a number: `t=+07` is signed as `7`.
    signed = b"\n".join([str(timestamp).encode("ascii"), method, target, body])
    return hmac.new(secret, signed, hashlib.sha256)


def _parse_i64(text):
    if not _I64.fullmatch(text):
        return None
    value = int(text)
    return value if value in _I64_RANGE else None


def _bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)
