"""`StepService` on its own: what it answers to each kind of request,
without a herald (the tests with one are in test_steps.py)."""

import http.client
import json
import unittest

import harness  # noqa: F401 - puts the package on the path

from herald_client import StepService, accepted, done, failed, retry, signature

SECRET = "a-secret-for-these-tests"
NOW = 1_700_000_000
KEY = "op_0123/charge"
ENVELOPE = {
    "operation_id": "op_0123", "workflow": "order", "step": "charge", "attempt": 2, "phase": "forward",
    "subject": "alice", "input": {"card": "4242"}, "results": {"reserve": {"id": "r-1"}},
    "callback": {"url": "http://127.0.0.1:1/v1/operations/op_0123/steps/charge:complete", "token": "2.9.ab"},
}


def request(service, path="/charge", body=None, *, key=KEY, method="POST", signed_at=NOW, sign_as=None):
    body = json.dumps(ENVELOPE).encode() if body is None else body
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if signed_at is not None:
        headers["Herald-Signature"] = signature.sign(SECRET, signed_at, method, sign_as or path, body)
    return service.handle(method, path.encode(), headers, body)


class Replies(unittest.TestCase):
    def setUp(self):
        self.calls = []
        self.service = StepService(SECRET, clock=lambda: NOW)

    def route(self, path, reply):
        @self.service.step(path)
        def handler(call):
            self.calls.append(call)
            if isinstance(reply, Exception):
                raise reply
            return reply

    def test_a_signed_call_reaches_its_handler_with_the_envelope_read(self):
        self.route("/charge", {"charge": "ch_1"})
        reply = request(self.service)
        self.assertEqual((reply.status, reply.body), (200, {"charge": "ch_1"}))
        (call,) = self.calls
        self.assertEqual(
            (call.key, call.operation_id, call.step, call.attempt, call.phase), (KEY, "op_0123", "charge", 2, "forward")
        )
        self.assertEqual(
            (call.subject, call.input, call.results), ("alice", {"card": "4242"}, {"reserve": {"id": "r-1"}})
        )
        self.assertEqual(call.callback.to_json(), ENVELOPE["callback"])

    def test_each_reply_is_the_status_herald_reads_it_by(self):
        cases = [
            (done({"a": 1}), 200, "application/json", ()),
            (accepted(), 202, "application/json", ()),
            (failed("Your card was declined."), 422, "application/problem+json", ()),
            (failed("No such account.", status=404), 404, "application/problem+json", ()),
            (retry("Busy, sorry.", retry_after=3), 503, "application/problem+json", (("Retry-After", "3"),)),
        ]
        for reply, status, content_type, extra in cases:
            with self.subTest(status=status):
                self.route("/charge", reply)
                got_status, headers, body = request(self.service).encode()
                self.assertEqual(got_status, status)
                self.assertEqual(headers, [("Content-Type", content_type), *extra])
                if status >= 400:
                    self.assertEqual(json.loads(body)["detail"], reply.body["detail"])
        with self.assertRaises(ValueError):
            failed("retrying would be a 408", status=408)

    def test_a_handler_that_raises_is_a_500_that_herald_retries_and_its_text_is_not_sent(self):
        self.route("/charge", RuntimeError("password=hunter2"))
        with self.assertLogs("herald_client.steps", "ERROR"):
            reply = request(self.service)
        self.assertEqual(reply.status, 500)
        self.assertNotIn("hunter2", json.dumps(reply.body))

    def test_a_result_that_is_not_json_is_a_500_not_a_broken_answer(self):
        self.route("/charge", {"when": object()})
        with self.assertLogs("herald_client.steps", "ERROR"):
            self.assertEqual(request(self.service).status, 500)

    def test_requests_that_are_not_step_calls_are_refused_before_any_handler(self):
        self.route("/charge", {})
        cases = {
            "no such path": (request(self.service, "/refund"), 404),
            "another method": (request(self.service, method="PUT"), 405),
            "no Idempotency-Key": (request(self.service, key=None), 400),
            "not JSON": (request(self.service, body=b"{"), 400),
            "not an envelope": (request(self.service, body=b'{"step": 1}'), 400),
        }
        for case, (reply, status) in cases.items():
            with self.subTest(case):
                self.assertEqual(reply.status, status)
                self.assertEqual(reply.body["status"], status)
        self.assertEqual(self.calls, [])

    def test_the_signature_must_hold_for_this_path_and_query_and_be_fresh(self):
        self.route("/charge", {})
        with self.assertLogs("herald_client.steps", "WARNING"):
            cases = {
                "unsigned": request(self.service, signed_at=None),
                "for another target": request(self.service, "/charge?x=1", sign_as="/charge"),
                "too old": request(self.service, signed_at=NOW - 301),
                "too far ahead": request(self.service, signed_at=NOW + 301),
            }
            cases["to a path with no step"] = request(self.service, "/refund", signed_at=None)
        for case, reply in cases.items():
            with self.subTest(case):
                self.assertEqual(reply.status, 401)
        self.assertEqual(self.calls, [])
        self.assertEqual(request(self.service, "/charge?x=1").status, 200, "the query is part of what is signed")
        self.assertEqual(request(self.service, signed_at=NOW - 300).status, 200)

    def test_without_a_secret_nothing_is_checked(self):
        service = StepService(None)
        service.step("/charge")(lambda call: {"ok": True})
        self.assertEqual(request(service, signed_at=None).status, 200)


class Serving(unittest.TestCase):
    def test_calls_share_a_kept_alive_connection_which_close_ends(self):
        service = StepService(None)
        service.step("/charge")(lambda call: {"attempt": call.attempt})
        server = service.serve()
        self.addCleanup(server.close)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        self.addCleanup(conn.close)
        body = json.dumps(ENVELOPE)
        for _ in range(2):
            headers = {"Idempotency-Key": KEY, "Content-Type": "application/json"}
            conn.request("POST", "/charge", body=body, headers=headers)
            resp = conn.getresponse()
            self.assertEqual((resp.status, json.loads(resp.read())), (200, {"attempt": 2}))
        sock = conn.sock
        self.assertIsNotNone(sock, "the connection was kept")

        server.close()

        # The connection herald would have kept is closed with the server.
        sock.settimeout(5)
        self.assertEqual(sock.recv(1), b"")


if __name__ == "__main__":
    unittest.main()
