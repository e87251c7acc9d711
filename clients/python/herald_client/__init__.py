"""A Python client for herald, standard library only.

# Layout

- `Client` (`client.py`) — start, read and cancel operations, and `watch`
  one live: its Server-Sent Events, reopened with ``Last-Event-ID`` after
  a dropped connection, so no event is lost or repeated.
- `StepService` (`steps.py`) — the services herald calls: handlers by
  path, ``Herald-Signature`` checked, the envelope parsed, replies that
  mean done, later (202), failed for good, or try again.
- `Callback` (`callback.py`) — finishing a step that answered 202.
- `signature` — `sign` and `verify`, exactly as herald's
  ``herald_core::signature``.
- `sse` — the event-stream framing, bytes in, messages out.
- `HeraldError`, `SignatureError`, `StreamError` (`errors.py`).
"""

import logging

from . import signature
from .callback import Callback, complete, fail
from .client import FINAL_TYPES, Client, Watch
from .errors import HeraldError, SignatureError, StreamError
from .steps import Reply, StepCall, StepServer, StepService, accepted, done, failed, retry

__all__ = [
    "FINAL_TYPES",
    "Callback",
    "Client",
    "HeraldError",
    "Reply",
    "SignatureError",
    "StepCall",
    "StepServer",
    "StepService",
    "StreamError",
    "Watch",
    "accepted",
    "complete",
    "done",
    "fail",
    "failed",
    "retry",
    "signature",
]
__version__ = "0.1.0"

# Log records (a refused signature, a handler that raised) go where the
# application's logging sends them; nowhere until it is configured.
logging.getLogger(__name__).addHandler(logging.NullHandler())
