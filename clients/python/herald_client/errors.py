"""What goes wrong, as exceptions a caller can tell apart without reading
their messages: `HeraldError` for herald's answers (RFC 9457 problem
documents), `SignatureError` for a `Herald-Signature` that does not hold.
"""

import json

PROBLEM_PREFIX = "urn:herald:problem:"


class HeraldError(Exception):
    """herald answered with an error: its problem document.

    Match on `type` (stable, e.g. ``urn:herald:problem:unknown-workflow``),
    never on `title` or `detail`, which are words for people.

    - `status` — the HTTP status (404, 409, 422…).
    - `type`, `title`, `detail` — the problem document's fields.
    - `operation_id` — the operation concerned, on conflicts and reused
      idempotency keys.
    - `retry_after` — seconds, when herald said when to try again.
    """

    def __init__(self, status, type, title, detail, *, operation_id=None, retry_after=None):
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.operation_id = operation_id
        self.retry_after = retry_after
        super().__init__(f"{status} {type}: {detail or title}")

    @property
    def code(self):
        """The last part of `type` (``unknown-workflow``), or `type` itself
        when it is not one of herald's."""
        if self.type.startswith(PROBLEM_PREFIX):
            return self.type[len(PROBLEM_PREFIX):]
        return self.type

    @classmethod
    def from_response(cls, status, reason, headers, body):
        """The error an answer stands for. A body that is not a problem
        document (a proxy's error page) becomes ``about:blank`` with the
        status line as its title, as RFC 9457 says."""
        retry_after = _seconds(headers.get("Retry-After"))
        problem = None
        try:
            parsed = json.loads(body.decode("utf-8"))
            if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
                problem = parsed
        except (UnicodeDecodeError, ValueError):
            pass
        if problem is None:
            text = body.decode("utf-8", "replace").strip()[:200]
            return cls(status, "about:blank", reason or f"HTTP {status}", text, retry_after=retry_after)
        return cls(
            status,
            problem["type"],
            _text(problem.get("title")),
            _text(problem.get("detail")),
            operation_id=problem.get("operation_id"),
            retry_after=retry_after,
        )


class StreamError(Exception):
    """The event stream sent something that is not one of herald's events,
    or could not be reopened within the watch's `retry_for`."""


class SignatureError(Exception):
    """A `Herald-Signature` that does not hold. `reason` is one of the
    constants below, as `herald_core::signature::VerifyError` names them."""

    MALFORMED = "malformed"
    MISMATCH = "mismatch"
    TOO_OLD = "too_old"
    FROM_THE_FUTURE = "from_the_future"

    _MESSAGES = {
        MALFORMED: "the signature header is malformed or has no v2 signature",
        MISMATCH: "the signature does not match the request",
        TOO_OLD: "the request is older than the tolerance: a replay",
        FROM_THE_FUTURE: "the request is dated further ahead than the tolerance",
    }

    def __init__(self, reason):
        self.reason = reason
        super().__init__(self._MESSAGES.get(reason, reason))


def _text(value):
    return value if isinstance(value, str) else ""


def _seconds(value):
    """`Retry-After` in seconds (herald sends only the number form)."""
    try:
        return max(0, int(value.strip())) if value else None
    except ValueError:
        return None
