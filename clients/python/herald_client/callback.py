"""Finishing a step later: a step service that answered 202 reports the
step's result (or its failure) to the callback herald put in the call's
envelope:

    POST <callback.url>            (…/v1/operations/{id}/steps/{step}:complete)
    Authorization: Bearer <callback.token>
    {"result": …}   or   {"error": "…", "retryable": false}

The token opens the step for the attempt it came with, until the step's
deadline or the operation's (plus a minute; seven days without either).
herald answers with the operation. A token of an attempt that is over,
or one that has expired, is refused (401 ``…:stale-callback-token``); a
forged one is a 401 ``…:unauthorized``; a second report of a step that is
already done is a 409 ``…:conflict``. A report may come before the call
has answered 202 (a service that finishes at once): herald takes it, and
the 202 that follows changes nothing. A report is not sent again after a
connection error: the first may have been recorded, which a second would
only meet as a 409.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from . import _http
from .errors import HeraldError

#: Longest `error` herald keeps (characters).
MAX_ERROR = 2000


@dataclass(frozen=True)
class Callback:
    """Where and how to report a step that answered 202. Keep it (it is
    two strings: `to_json`/`from_json`) if the work outlives the process."""

    url: str
    token: str

    @classmethod
    def from_json(cls, value):
        """From the envelope's ``callback`` object (or `to_json`'s)."""
        if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("url", "token")):
            raise ValueError("a callback is an object with `url` and `token` strings")
        return cls(url=value["url"], token=value["token"])

    def to_json(self):
        return {"url": self.url, "token": self.token}

    def succeed(self, result=None, *, timeout=10.0, ssl_context=None):
        """The step is done; `result` (any JSON value) is its result, which
        later steps receive in their envelope's ``results``. Returns the
        operation as herald answers it."""
        return _post(self, {"result": result}, timeout, ssl_context)

    def fail(self, error, *, retryable=False, timeout=10.0, ssl_context=None):
        """The step's work failed. `error` is shown to the end user, so
        write it for them. With `retryable`, herald tries the step again
        (a new attempt, a new token) while its retry policy allows;
        otherwise it fails for good and what was done is undone."""
        if not isinstance(error, str) or not error:
            raise ValueError("`error` is the reason, in words for the user")
        if len(error) > MAX_ERROR:
            raise ValueError(f"`error` is longer than {MAX_ERROR} characters")
        return _post(self, {"error": error, "retryable": bool(retryable)}, timeout, ssl_context)


def complete(callback, result=None, **options):
    """`Callback.succeed` for a callback given as the envelope's object."""
    return _callback(callback).succeed(result, **options)


def fail(callback, error, *, retryable=False, **options):
    """`Callback.fail` for a callback given as the envelope's object."""
    return _callback(callback).fail(error, retryable=retryable, **options)


def _callback(value):
    return value if isinstance(value, Callback) else Callback.from_json(value)


def _post(callback, body, timeout, ssl_context):
    parts = urlsplit(callback.url)
    target = _http.Target(f"{parts.scheme}://{parts.netloc}", ssl_context)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Authorization": f"Bearer {callback.token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    data = _http.encode_json(body)
    return _http.answer(*_http.exchange(target, "POST", path, headers=headers, body=data, timeout=timeout))
