"""What the integration tests stand on: a real herald process (the binary
named by ``HERALD_BIN``), a step service built with the package's own
helpers, a TCP proxy whose connections a test can cut, and waiting on a
condition with a deadline.

Every process and server a test starts is stopped by its cleanups, pass
or fail. A herald also dies with the test runner: it is started with
``PR_SET_PDEATHSIG`` (Linux), so even a runner killed with SIGKILL takes
it along, and an ``atexit`` hook kills any still running on a normal
exit. (The signal follows the thread that started the process: tests
start herald from the main thread, which lives as long as the runner.)
"""

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

# The package under test, from this checkout (not an installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from herald_client import StepService, accepted, done, failed  # noqa: E402

SECRET = "a-step-service-secret-for-tests"

#: How long (seconds) a test waits for what herald does in milliseconds: generous, for a loaded machine.
WITHIN = 15.0


def herald_bin():
    """``HERALD_BIN``, made absolute (herald runs in the test's directory)
    or looked up on ``PATH`` when it is a bare name."""
    given = os.environ.get("HERALD_BIN")
    if not given:
        raise RuntimeError("set HERALD_BIN to the herald binary the tests run against")
    path = os.path.abspath(given) if os.sep in given else shutil.which(given)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"HERALD_BIN is not an executable file: {given}")
    return path


def wait_until(what, probe, within=WITHIN, every=0.02):
    """Polls `probe` until it answers something other than `None` or
    `False`, and returns that; fails the test after `within` seconds,
    saying `what`."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(every)


# ---------------------------------------------------------------- herald


_running = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_running):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _die_with_parent_hook():
    """A `preexec_fn` that has the child SIGKILLed when its parent dies;
    everything it calls is looked up before the fork."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig, sigkill, getppid, exit_ = 1, int(signal.SIGKILL), os.getppid, os._exit

    def hook():
        prctl(pr_set_pdeathsig, sigkill)
        if getppid() != parent:
            exit_(1)  # the parent died before the line above

    return hook


class Herald:
    """``herald serve --config <file>`` in `workdir`, its log in
    ``herald-<n>.log`` there. The first start picks a free port (herald
    binds port 0 and says which it got); restarts keep it, so clients'
    URLs stay good."""

    def __init__(self, workdir, config):
        self.workdir = Path(workdir)
        self.config = config
        self.port = None
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.starts += 1
        log = self.workdir / f"herald-{self.starts}.log"
        args = [herald_bin(), "serve", "--config", str(self.config)]
        if self.port is not None:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        # herald reads every HERALD_… variable as a setting (HERALD_BIN
        # would be an unknown key `bin`): it gets only the test's own.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env.update(RUST_LOG="info", HERALD_LOG_FORMAT="json")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=out,
                preexec_fn=_die_with_parent_hook(),
            )
        _running.add(self.proc)
        address = wait_until(f"herald says where it listens ({log})", lambda: self._listening(log))
        self.port = int(address.rsplit(":", 1)[1])
        wait_until("herald is ready", self._ready)
        return self

    def _listening(self, log):
        if self.proc.poll() is not None:
            raise AssertionError(f"herald exited ({self.proc.returncode}):\n{log.read_text()[-3000:]}")
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == "herald is listening":
                return entry["address"]
        return None

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"herald exited ({self.proc.returncode})")
        # http.client, not urllib: no proxy from the environment in between.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def kill(self):
        """SIGKILL: no shutdown, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def stop(self):
        """SIGTERM, as an operator stops it; SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def _reap(self):
        if self.proc is not None:
            self.proc.wait()
            _running.discard(self.proc)


def toml_string(text):
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(str(text))


def write_config(workdir, services, workflows, extra=""):
    """herald.toml for a test: its own data and workflow folders, the
    engine polling often, `services` ({name: (url, secret)}), the
    workflow files `workflows` ({name: text}), then `extra`."""
    workdir = Path(workdir)
    wf_dir = workdir / "workflows"
    wf_dir.mkdir()
    for name, text in workflows.items():
        (wf_dir / f"{name}.toml").write_text(text)
    lines = [
        'listen = "127.0.0.1:0"',
        f"data_dir = {toml_string(workdir / 'data')}",
        f"workflows = {toml_string(wf_dir)}",
        "[engine]",
        'poll_interval = "100ms"',
    ]
    for name, (url, secret) in services.items():
        lines += [f"[services.{name}]", f"instances = [{toml_string(url)}]", 'timeout = "5s"']
        if secret is not None:
            lines.append(f"secret = {toml_string(secret)}")
    config = workdir / "herald.toml"
    config.write_text("\n".join(lines) + "\n" + extra)
    return config


def step(name, path, label, done_label, *, extra=""):
    return (
        f'[[steps]]\nname = "{name}"\nlabel = "{label}"\ndone_label = "{done_label}"\n'
        f'call = {{ service = "shop", path = "{path}" }}\n'
        'retry = { attempts = 3, initial = "20ms", max = "100ms" }\ntimeout = "5s"\n' + extra
    )


#: Reserve → charge → confirm; a reservation is put back if a later step fails.
ORDER = (
    'name = "order"\nlabel = "Your order"\n'
    + step("reserve", "/reserve", "Reserving your items", "Items reserved",
           extra='compensate = { service = "shop", path = "/reserve/undo", label = "Putting your items back", '
                 'done_label = "Items put back" }\n')
    + step("charge", "/charge", "Charging your card", "Card charged")
    + step("confirm", "/confirm", "Sending your confirmation", "Confirmation sent")
)

#: Reserve → ship (answers 202; finished by callback) → confirm.
SHIPPING = (
    'name = "shipping"\nlabel = "Your parcel"\n'
    + step("reserve", "/reserve", "Reserving your items", "Items reserved",
           extra='compensate = { service = "shop", path = "/reserve/undo", label = "Putting your items back", '
                 'done_label = "Items put back" }\n')
    + step("ship", "/ship", "Shipping your parcel", "Parcel shipped")
    + step("confirm", "/confirm", "Sending your confirmation", "Confirmation sent")
)


# ---------------------------------------------------------- step service


class Shop(StepService):
    """The tests' step service, built with `StepService`: it records every
    request as it came (method, target, headers, body) and what it
    answered, and every call a handler took."""

    def __init__(self, secret=SECRET):
        super().__init__(secret)
        self._cond = threading.Condition()
        self.requests = []
        self.calls = []
        self.step("/reserve")(self._record(lambda c: done({"reservation": f"r-{c.operation_id[-6:]}"})))
        self.step("/reserve/undo")(self._record(lambda c: done({"released": True})))
        self.step("/charge")(self._record(self._charge))
        self.step("/ship")(self._record(lambda c: accepted()))
        self.step("/confirm")(self._record(lambda c: done({"saw": sorted(c.results)})))

    @staticmethod
    def _charge(call):
        if call.input.get("card") == "declined":
            return failed("Your card was declined.")
        return {"charge": "ch_1"}

    def _record(self, behaviour):
        def handler(call):
            with self._cond:
                self.calls.append(call)
                self._cond.notify_all()
            return behaviour(call)

        return handler

    def handle(self, method, target, headers, body):
        reply = super().handle(method, target, headers, body)
        seen = {k.lower(): v for k, v in headers.items()}
        with self._cond:
            self.requests.append((method, target, seen, body, reply.status))
            self._cond.notify_all()
        return reply

    def call_of(self, operation_id, step, within=WITHIN):
        """The latest call of `step` of the operation, waiting for one."""

        def probe():
            with self._cond:
                found = [c for c in self.calls if c.operation_id == operation_id and c.step == step]
            return found[-1] if found else None

        return wait_until(f"herald calls {step} of {operation_id}", probe, within)


# ----------------------------------------------------------------- proxy


class Proxy:
    """A TCP proxy on a loopback port of its own to `upstream_port`. A
    test can `cut` every connection through it, `hold` new ones (each is
    closed as soon as it comes) and `release` them again. It keeps the
    first bytes each connection sent, to see the requests."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = set()
        self._held = False
        self._closed = False
        self.heads = []
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed or self._held:
                    self.refused += 1
                    client.close()
                    continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
                self.heads.append(bytearray())
                head = self.heads[-1]
            threading.Thread(target=self._pipe, args=(client, upstream, head), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _pipe(self, src, dst, head):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if head is not None and len(head) < 4096:
                    with self._lock:
                        head.extend(data[: 4096 - len(head)])
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def requests(self):
        """The request heads seen so far, as text."""
        with self._lock:
            return [bytes(h).split(b"\r\n\r\n", 1)[0].decode("latin-1") for h in self.heads]

    def cut(self):
        with self._lock:
            conns, self._open = list(self._open), set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def hold(self):
        with self._lock:
            self._held = True

    def release(self):
        with self._lock:
            self._held = False

    def close(self):
        with self._lock:
            self._closed = True
        self._listener.close()
        self.cut()


# ------------------------------------------------------------- test case


class HeraldTestCase(unittest.TestCase):
    """Each test: its own directory, its own step service (a `Shop`) and
    its own herald running the `ORDER` and `SHIPPING` workflows on it, all
    gone when the test ends, passed or failed."""

    workflows = {"order": ORDER, "shipping": SHIPPING}
    #: The secret the step service checks (herald signs with `SECRET`).
    shop_secret = SECRET
    #: More of herald.toml, appended as it is.
    extra_config = ""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="herald-py-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.shop = Shop(self.shop_secret)
        self.shop_server = self.shop.serve(("127.0.0.1", 0))
        self.addCleanup(self.shop_server.close)
        config = write_config(
            self.dir, {"shop": (self.shop_server.url, SECRET)}, self.workflows, self.extra_config
        )
        self.herald = Herald(self.dir, config)
        self.addCleanup(self.herald.kill)
        self.herald.start()

    def watch_in_background(self, watch):
        """Iterates `watch` in a thread; returns the list it fills and the
        thread (whose `error` is whatever the iteration raised)."""
        events = []
        thread = threading.Thread(target=_drain, args=(watch, events), daemon=True)
        thread.error = None
        self.addCleanup(watch.close)
        thread.start()
        return events, thread

    def watch_all(self, watch, within=WITHIN):
        """Every event `watch` hands out until it ends, raising what it
        raised; fails the test if it has not ended within `within` (an
        operation that never ends must not hold the run)."""
        events, thread = self.watch_in_background(watch)
        thread.join(within)
        if thread.is_alive():
            watch.close()
            thread.join(within)
            self.fail(f"the watch did not end within {within} s; it saw {[e['type'] for e in events]}")
        if thread.error is not None:
            raise thread.error
        return events

    def assertWholeTimeline(self, events, operation):
        """`events` are the operation's whole timeline: each event once,
        in order, from the first to the final one."""
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)), "every event once, in order")
        self.assertEqual(events, operation["timeline"], "what was watched is what herald stored")


def _drain(watch, events):
    try:
        for event in watch:
            events.append(event)
    except BaseException as e:  # noqa: BLE001 - handed to the test
        threading.current_thread().error = e


def seen(events, type_, step=None):
    """Whether `events` holds one of `type_` (for `step`)."""
    return any(e["type"] == type_ and (step is None or e.get("step") == step) for e in list(events))
