"""herald's operations API: start, read, cancel, and watch live.

Operations come back as herald sends them (`GET /v1/operations/{id}`):
a dict with ``id``, ``workflow``, ``status`` (``accepted``, ``running``,
``compensating``, ``succeeded``, ``failed``, ``cancelled``), ``steps``
(each with ``name``, ``label``, ``done_label``, ``status``, ``attempts``,
``result``, ``error``…), ``outcome`` once it has ended (``summary``,
``succeeded``, ``undone``, ``not_undone``, ``failed_step``, ``reason``),
``last_seq`` and ``timeline``, the list of its events. An event is a dict
with ``seq`` (1, 2, 3… and the stream's event id), ``at``, ``type``
(``accepted``, ``step_started``, ``step_succeeded``, ``succeeded``…),
the fields of its type (``step``, ``attempt``, ``error``, ``reason``…)
and ``message``, the sentence a person is shown.
"""

import http.client
import json
import math
import socket
import threading
import time
from collections import deque
from urllib.parse import quote

from . import _http
from .errors import HeraldError, StreamError
from .sse import Decoder

#: Event types after which nothing follows.
FINAL_TYPES = frozenset({"succeeded", "failed", "cancelled"})


class Client:
    """A client of one herald. Cheap, and safe to share between threads:
    each request has a connection of its own.

    `token` is sent as ``Authorization: Bearer <token>``: a service's or
    admin's static token, or an end user's JWT (who then sees only their
    own operations, and gets 404 for anyone else's). `timeout` bounds each
    request (a start with `wait` is given that long on top).
    """

    def __init__(self, base_url, token=None, *, timeout=30.0, ssl_context=None):
        self._target = _http.Target(base_url, ssl_context)
        self._token = token
        self.timeout = timeout

    def start(self, workflow, input, idempotency_key=None, wait=None, *, subject=None):
        """Starts an operation of `workflow` with `input` (any JSON value,
        usually a dict) and returns it: accepted and durable.

        - `idempotency_key`: a retry with the same key and body returns
          the same operation; the same key with another body is a 422
          ``…:idempotency-key-reused``.
        - `wait`: seconds herald may hold the answer for the operation
          to end (whole seconds: a fraction is rounded up) (``Prefer: wait=N``, capped by the server's
          ``limits.max_wait_seconds``). Check ``status``: it may still be
          running when the time is up.
        - `subject`: whom it is about (``Herald-Subject``), when the
          workflow's `subject` pointer does not say.
        """
        headers = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        timeout = self.timeout
        if wait is not None:
            if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait < 2**63:
                raise ValueError("`wait` is a number of seconds")
            wait = math.ceil(wait)  # herald takes whole seconds
            headers["Prefer"] = f"wait={wait}"
            timeout += wait
        if subject is not None:
            headers["Herald-Subject"] = subject
        path = f"/v1/workflows/{_segment(workflow)}/operations"
        return self._json("POST", path, body=_http.encode_json(input), headers=headers, timeout=timeout)

    def get(self, operation_id):
        """The operation with its steps, outcome and timeline."""
        return self._json("GET", f"/v1/operations/{_segment(operation_id)}")

    def cancel(self, operation_id, reason=None):
        """Cancels the operation: what was done is undone (compensated),
        and the user is told `reason` (words for them, at most 500
        characters). Returns the operation, now winding down; a 409
        ``…:conflict`` if it has already ended."""
        body = _http.encode_json({"reason": reason}) if reason is not None else b""
        return self._json("POST", f"/v1/operations/{_segment(operation_id)}:cancel", body=body)

    def watch(self, operation_id, last_event_id=None, *, retry_for=300.0, read_timeout=60.0):
        """The operation's events, live, as an iterator (see `Watch`):

            for event in client.watch(op["id"]):
                print(event["message"])

        From the first event, or after `last_event_id` (an event's
        ``seq``). It ends after the final event (succeeded, failed or
        cancelled), or at once when the operation ended at or before
        `last_event_id` (herald then answers 204).
        """
        return Watch(self, operation_id, last_event_id, retry_for=retry_for, read_timeout=read_timeout)

    def _headers(self, accept="application/json"):
        headers = {"Accept": accept}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _json(self, method, path, *, body=None, headers=None, timeout=None):
        all_headers = self._headers()
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        answer = _http.exchange(
            self._target, method, path, headers=all_headers, body=body, timeout=timeout or self.timeout
        )
        return _http.answer(*answer)


class Watch:
    """An operation's events, one dict at a time, in order, each once.

    A dropped connection (herald restarted, a proxy's timeout, a network
    blip) is reopened with ``Last-Event-ID`` set to the last event handed
    out, so herald sends exactly the rest; an event already handed out is
    never handed out again. Waits between attempts grow from 0.1 s to
    2 s (longer if herald says ``Retry-After``). If no connection could be
    made, or none brought an event, for `retry_for` seconds, the last
    error is raised (``retry_for=None``: never give up). herald's
    refusals (404 for an operation this client may not see, 401, 403)
    are raised at once as `HeraldError`.

    A connection silent for `read_timeout` seconds is taken as dead
    (herald sends a keep-alive comment every 15 s).

    `last_event_id` is the ``seq`` of the last event handed out (or the
    one it started after); `reconnects` counts the connections reopened
    after a drop. `close()` ends the iteration from any thread; a `Watch`
    is also a context manager.
    """

    #: Status codes after which herald may well answer again.
    _TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __init__(self, client, operation_id, last_event_id=None, *, retry_for=300.0, read_timeout=60.0):
        if last_event_id is not None and (isinstance(last_event_id, bool) or int(last_event_id) < 0):
            raise ValueError("`last_event_id` is an event's `seq`")
        self.operation_id = operation_id
        self.last_event_id = None if last_event_id is None else int(last_event_id)
        self.reconnects = 0
        self._client = client
        self._path = f"/v1/operations/{_segment(operation_id)}/events"
        self._retry_for = retry_for
        self._read_timeout = read_timeout
        self._pending = deque()
        # The seq of the last event queued (handed out or pending): anything
        # at or below it is a repeat.
        self._queued = self.last_event_id
        self._ended = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conn = None
        self._sock = None
        self._resp = None
        self._decoder = None
        self._opened_before = False
        self._got_on_this_connection = False
        self._failures = 0
        self._failing_since = None

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._pending:
                event = self._pending.popleft()
                self.last_event_id = event["seq"]
                return event
            if self._ended or self._closed.is_set():
                self._disconnect()
                raise StopIteration
            if self._resp is None:
                self._open()
            else:
                self._read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Ends the watch; an iteration blocked on the stream (in another
        thread) stops at once."""
        self._closed.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _open(self):
        headers = self._client._headers(accept="text/event-stream")
        headers["Cache-Control"] = "no-cache"
        if self._queued is not None:
            headers["Last-Event-ID"] = str(self._queued)
        conn = self._client._target.connect(self._read_timeout)
        with self._lock:
            self._conn = conn
        if self._closed.is_set():
            return self._disconnect()
        try:
            conn.connect()
            # The socket itself: herald ends its streams by closing the
            # connection, so `http.client` hands the socket over to the
            # response and `conn.sock` is gone once the answer begins.
            with self._lock:
                self._sock = conn.sock
            if self._closed.is_set():
                return self._disconnect()
            conn.request("GET", self._client._target.prefix + self._path, headers=headers)
            resp = self._resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._disconnect()
            return self._failed(e)
        if self._opened_before:
            self.reconnects += 1
        self._opened_before = True
        if resp.status == 204:
            # Nothing after Last-Event-ID, and the operation has ended.
            self._disconnect()
            self._ended = True
            return None
        if resp.status != 200:
            body = _read_quietly(resp)
            self._disconnect()
            error = HeraldError.from_response(resp.status, resp.reason, resp.headers, body)
            if resp.status not in self._TRANSIENT:
                raise error
            return self._failed(error, error.retry_after)
        content_type = resp.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "text/event-stream":
            self._disconnect()
            what = content_type or "no content type"
            raise StreamError(f"{self._path} answered 200 with {what}, not an event stream")
        self._decoder = Decoder()
        self._got_on_this_connection = False
        return None

    def _read(self):
        error = None
        try:
            chunk = self._resp.read1(65536)
        except (OSError, http.client.HTTPException, ValueError) as e:
            chunk, error = b"", e
        if not chunk:
            got = self._got_on_this_connection
            self._disconnect()
            if not got:
                # Open and closed with nothing in between: count it, so a
                # server that keeps doing that is not asked in a tight loop.
                return self._failed(error or StreamError("the event stream closed before any event"))
            return None
        for message in self._decoder.feed(chunk):
            self._take(message)

    def _take(self, message):
        try:
            event = json.loads(message.data)
            seq = int(message.id) if message.id is not None else event["seq"]
        except (ValueError, TypeError, KeyError) as e:
            raise StreamError(f"not one of herald's events: {message.data[:200]!r}") from e
        if not isinstance(event, dict):
            raise StreamError(f"not one of herald's events: {message.data[:200]!r}")
        event.setdefault("seq", seq)
        self._got_on_this_connection = True
        self._failures, self._failing_since = 0, None
        if self._queued is not None and seq <= self._queued:
            return
        self._queued = seq
        self._pending.append(event)
        if event.get("type") in FINAL_TYPES:
            self._ended = True

    def _failed(self, error, retry_after=None):
        """Waits before the next attempt, or raises `error` once the
        attempts have gone on for `retry_for`."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif self._retry_for is not None and now - self._failing_since >= self._retry_for:
            raise error
        self._failures += 1
        delay = min(2.0, 0.1 * 2 ** min(self._failures - 1, 5))
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        if self._retry_for is not None:
            delay = min(delay, max(0.0, self._failing_since + self._retry_for - now))
        self._closed.wait(delay)

    def _disconnect(self):
        with self._lock:
            conn, self._conn, self._sock = self._conn, None, None
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()
        self._decoder = None
        if conn is not None:
            conn.close()


def _segment(value):
    """A path segment, encoded: an id or a name never changes the path."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return quote(value, safe="")


def _read_quietly(resp):
    try:
        return resp.read()
    except (OSError, http.client.HTTPException):
        return b""
