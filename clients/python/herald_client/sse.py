"""Server-Sent Events framing, read as the WHATWG spec says
(https://html.spec.whatwg.org/multipage/server-sent-events.html): lines
end in CRLF, LF or CR; ``field: value`` lines build a message; a blank
line sends it; lines starting with ``:`` are comments (herald's
keep-alives). Pure: bytes in, messages out, so it is tested without a
socket.
"""

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Message:
    """One dispatched message. `id` is the stream's last event id when it
    was sent (``None`` if none was ever set)."""

    data: str
    event: str
    id: str | None


class Decoder:
    """Feed it the stream's bytes as they come, in chunks of any size."""

    def __init__(self):
        self._buffer = b""
        self._first = True
        self._after_cr = False
        self._data = []
        self._event = ""
        self._last_id = None
        #: The last ``retry:`` the server asked for, in milliseconds.
        self.retry_ms = None

    def feed(self, chunk):
        """The messages completed by `chunk`, in order."""
        if not chunk:
            return []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._after_cr = False
        buffer = self._buffer + chunk
        if self._first:
            # One byte-order mark may open the stream; wait until it is
            # clear whether these first bytes are one.
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM):]
            self._first = False
        messages = []
        start = 0
        while True:
            cr = buffer.find(b"\r", start)
            lf = buffer.find(b"\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line = buffer[start:end]
            start = end + 1
            if buffer[end:end + 1] == b"\r":
                if start < len(buffer):
                    if buffer[start:start + 1] == b"\n":
                        start += 1
                else:
                    self._after_cr = True
            message = self._line(line.decode("utf-8", "replace"))
            if message is not None:
                messages.append(message)
        self._buffer = buffer[start:]
        return messages

    def _line(self, line):
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self):
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return Message(data="\n".join(data), event=event or "message", id=self._last_id)
