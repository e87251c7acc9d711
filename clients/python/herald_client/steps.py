"""Step services: what herald calls, written with the standard library.

herald calls a step as ``<method> <instance><path>`` with a JSON envelope
(``operation_id``, ``workflow``, ``step``, ``attempt``, ``phase``,
``subject``, ``input``, ``results`` of the steps before, ``callback``) and
the headers ``Idempotency-Key`` (``<operation_id>/<step>``, or
``…/compensate``: the same on every attempt, so do the work once),
``traceparent`` and, when the service has a ``secret`` in herald's
configuration, ``Herald-Signature``. The answer decides what happens:

- 2xx — done; the body is the step's result (`done`, or return a value);
- 202 — the service will report later through the callback (`accepted`;
  then `Callback.succeed` or `Callback.fail`). For a compensation, which
  has no callback, herald takes 202 as done;
- 4xx but 408 and 429 — failed for good (`failed`); a problem document's
  ``detail`` is what the end user is shown, so write it for them;
- 5xx, 408, 429 — tried again with backoff (`retry`; 503 and 429 also
  tell herald the service is busy, and ``Retry-After`` is honoured).

`StepService` routes paths to handlers, checks the signature, parses the
envelope and sends the reply; `StepService.serve` runs it on
`http.server`, and `StepService.handle` lets any other server use it.
"""

import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import signature
from .callback import Callback
from .errors import SignatureError

log = logging.getLogger(__name__)

#: Largest request body read (the envelope carries the input and earlier results).
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class StepCall:
    """One call of a step (or of its compensation) by herald."""

    #: ``Idempotency-Key``: ``<operation_id>/<step>`` (``…/compensate``).
    key: str
    operation_id: str
    workflow: str
    step: str
    #: 1 on the first call; each retry is a new attempt (and a new callback token).
    attempt: int
    #: ``forward`` (doing the step) or ``compensation`` (undoing it).
    phase: str
    subject: str | None
    input: object
    #: Results of the steps that succeeded before this one, by step name.
    results: dict
    #: Where to report if this call answers 202 (`None` for compensations).
    callback: Callback | None
    traceparent: str | None
    #: The whole envelope, fields herald may add later included.
    envelope: dict = field(repr=False)


@dataclass(frozen=True)
class Reply:
    """An answer to herald: a status, a JSON body, extra headers."""

    status: int
    body: object
    headers: tuple = ()

    def encode(self):
        """``(status, headers, body bytes)`` as sent."""
        if self.status == 204:
            return self.status, list(self.headers), b""
        problem = isinstance(self.body, dict) and self.status >= 400 and "type" in self.body
        content_type = "application/problem+json" if problem else "application/json"
        data = json.dumps(self.body, allow_nan=False, separators=(",", ":")).encode("utf-8")
        return self.status, [("Content-Type", content_type), *self.headers], data


def done(result=None):
    """200: the step is done; `result` (any JSON value) is its result."""
    return Reply(200, result)


def accepted():
    """202: the work goes on; report it with the call's `callback`."""
    return Reply(202, {})


def failed(detail, status=422):
    """Failed for good (a 4xx other than 408 and 429): what was done
    before is undone. `detail` is shown to the end user."""
    if not 400 <= status < 500 or status in (408, 429):
        raise ValueError("a step fails for good with a 4xx other than 408 and 429")
    return _problem(status, detail)


def retry(detail, retry_after=None):
    """503: not now; herald tries again (after `retry_after` seconds, if
    given, and its retry policy allows)."""
    headers = (("Retry-After", str(int(retry_after))),) if retry_after is not None else ()
    reply = _problem(503, detail)
    return Reply(reply.status, reply.body, headers)


def _problem(status, detail):
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = ""
    return Reply(status, {"type": "about:blank", "title": title, "status": status, "detail": detail})


class StepService:
    """A step service: handlers by path, herald's signature checked.

        service = StepService(secret="the service's secret in herald.toml")

        @service.step("/payment/charge")
        def charge(call):
            if call.input["card"].endswith("0002"):
                return failed("Your card was declined.")
            return {"charge": "ch_1"}          # a plain value: done

        service.serve(("127.0.0.1", 7101)).wait()

    A handler takes a `StepCall` and returns a `Reply` (`done`,
    `accepted`, `failed`, `retry`) or any JSON value (done, with it as the
    result). An exception it raises is logged and answered 500, which
    herald retries; its text is not sent.

    `secret` is required and may be ``None`` only on purpose: then
    requests are not checked, and anyone who reaches the service can run
    its steps. With a secret, a request whose signature does not hold is
    refused with 401 (herald fails the step for good: a secret that
    differs from herald's is a mistake to fix, not to retry).
    """

    def __init__(self, secret, *, tolerance=signature.TOLERANCE_SECS, clock=time.time):
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._tolerance = tolerance
        self._clock = clock
        self._routes = {}

    def step(self, path, method="POST"):
        """Registers the decorated function for ``method path`` (the
        path without its query, as the workflow's ``call`` or
        ``compensate`` names it)."""
        if not path.startswith("/"):
            raise ValueError("a path starts with /")

        def register(handler):
            self._routes[(method.upper(), path)] = handler
            return handler

        return register

    def handle(self, method, target, headers, body):
        """Answers one request: `target` is the request line's path and
        query (raw bytes, or text as received), `headers` any mapping with
        ``get`` (case-insensitive, as `http.server`'s are), `body` bytes.
        Returns a `Reply`. For use under any HTTP server."""
        raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
        path = raw_target.split(b"?", 1)[0].decode("latin-1")
        # Who is asking comes first: a caller that is not herald learns nothing.
        if self._secret is not None:
            try:
                header = headers.get(signature.HEADER)
                signature.verify(self._secret, header, method, raw_target, body, self._clock(), self._tolerance)
            except SignatureError as e:
                log.warning("refused a request to %s: %s", path, e)
                return _problem(401, "The request could not be verified as herald's.")
        handler = self._routes.get((method.upper(), path))
        if handler is None:
            if any(p == path for _, p in self._routes):
                return _problem(405, f"{path} does not take {method}.")
            return _problem(404, f"There is no step at {path}.")
        key = (headers.get("Idempotency-Key") or "").strip()
        if not key:
            return _problem(400, "The request has no Idempotency-Key header.")
        try:
            call = _call(key, headers, body)
        except ValueError as e:
            return _problem(400, f"The request is not a step call ({e}).")
        try:
            reply = handler(call)
            reply = reply if isinstance(reply, Reply) else done(reply)
            reply.encode()  # a result that is not JSON fails here, not mid-answer
        except Exception:
            log.exception("the handler of %s failed on %s", path, key)
            return _problem(500, "The service failed unexpectedly.")
        return reply

    def serve(self, address=("127.0.0.1", 0)):
        """Serves on `address` in background threads; returns the running
        `StepServer` (``port`` 0 picks a free one: see `StepServer.url`)."""
        return StepServer(self, address)


class StepServer:
    """A `StepService` on `http.server`, HTTP/1.1 with keep-alive, one
    thread per connection. `close()` stops it and closes the connections
    it holds open (herald keeps connections to a service and reuses them)."""

    def __init__(self, service, address):
        self._connections = set()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"service": service, "server_ref": self})
        self._httpd = _Server(address, handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="herald-step-service", daemon=True)
        self._thread.start()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        host = self._httpd.server_address[0]
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def wait(self):
        """Blocks until the server is closed (for a script's main thread)."""
        self._thread.join()

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _track(self, conn, open_):
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        # A caller that went away (herald restarted, a connection reset)
        # is nobody's error; anything else is logged, not printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("connection from %s ended abruptly", client_address)
        else:
            log.exception("serving %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service = None
    server_ref = None

    def setup(self):
        super().setup()
        self.server_ref._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server_ref._track(self.connection, False)

    def _any(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            return self._send(_problem(411, "Send the body with a Content-Length."), close=True)
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            return self._send(_problem(400, "The Content-Length is not a number."), close=True)
        if size < 0 or size > MAX_BODY_BYTES:
            return self._send(_problem(413, "The request body is too large."), close=True)
        body = self.rfile.read(size)
        if len(body) < size:
            return None  # the connection ended mid-body: nobody to answer
        # The target as sent, from the request line (`self.path` may have
        # been tidied: a leading `//` is collapsed), and as bytes again: the
        # line was decoded as Latin-1.
        target = self.requestline.split()[1].encode("latin-1")
        self._send(self.service.handle(self.command, target, self.headers, body))
        return None

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _any

    def _send(self, reply, close=False):
        status, headers, data = reply.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)


def _call(key, headers, body):
    try:
        envelope = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("its body is not JSON") from e
    if not isinstance(envelope, dict):
        raise ValueError("its body is not an object")
    for name, kind in (("operation_id", str), ("workflow", str), ("step", str), ("attempt", int), ("phase", str)):
        if not isinstance(envelope.get(name), kind):
            raise ValueError(f"`{name}` is missing or not a {kind.__name__}")
    callback = envelope.get("callback")
    return StepCall(
        key=key,
        operation_id=envelope["operation_id"],
        workflow=envelope["workflow"],
        step=envelope["step"],
        attempt=envelope["attempt"],
        phase=envelope["phase"],
        subject=envelope.get("subject"),
        input=envelope.get("input"),
        results=envelope.get("results") or {},
        callback=Callback.from_json(callback) if callback is not None else None,
        traceparent=headers.get("traceparent"),
        envelope=envelope,
    )
