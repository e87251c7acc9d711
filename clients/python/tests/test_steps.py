"""Step services built with `StepService`, called by a real herald:
herald's signed calls are accepted and anyone else's refused; a step that
answers 202 is finished through its callback."""

import hashlib
import hmac
import http.client
import json
import time
import unittest

from harness import SECRET, WITHIN, HeraldTestCase, seen, wait_until

from herald_client import Callback, Client, HeraldError, SignatureError, accepted, complete, fail, signature

INPUT = {"customer": "alice", "items": [{"sku": "tea", "qty": 1}]}


def post(url_port, path, body, headers):
    """A request of our own to the step service: ``(status, JSON body)``."""
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=WITHIN)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), json.loads(resp.read() or b"null")
    finally:
        conn.close()


class SignedCalls(HeraldTestCase):
    def test_the_step_service_accepts_heralds_signed_calls_and_refuses_badly_signed_ones(self):
        client = Client(self.herald.url, timeout=WITHIN)
        op = client.start("order", INPUT, wait=WITHIN)
        self.assertEqual(op["status"], "succeeded", "herald's calls were accepted")
        from_herald = list(self.shop.requests)
        self.assertEqual([(m, t, s) for m, t, _, _, s in from_herald],
                         [("POST", b"/reserve", 200), ("POST", b"/charge", 200), ("POST", b"/confirm", 200)])
        method, target, headers, body, _ = from_herald[0]
        self.assertRegex(headers["herald-signature"], r"^t=\d+,v2=[0-9a-f]{64}$")
        self.assertEqual(headers["idempotency-key"], f"{op['id']}/reserve")
        # herald's real signature, checked again here: it holds for what
        # was sent, and for nothing else.
        signature.verify(SECRET, headers["herald-signature"], method, target, body)
        with self.assertRaises(SignatureError) as caught:
            signature.verify(SECRET, headers["herald-signature"], method, b"/charge", body)
        self.assertEqual(caught.exception.reason, SignatureError.MISMATCH)

        calls_before = len(self.shop.calls)
        now = int(time.time())
        other = body.replace(b'"tea"', b'"mug"')
        self.assertNotEqual(other, body)
        # The earlier scheme, over `<t>.<body>` alone: no longer accepted.
        v1 = f"t={now},v1=" + hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        refused = {
            "not signed": None,
            "signed with another secret": signature.sign("another-secret-entirely", now, "POST", "/reserve", body),
            "signed for another path": signature.sign(SECRET, now, "POST", "/charge", body),
            "signed for another method": signature.sign(SECRET, now, "PUT", "/reserve", body),
            "signed for another body": signature.sign(SECRET, now, "POST", "/reserve", other),
            "signed over five minutes ago": signature.sign(SECRET, now - 301, "POST", "/reserve", body),
            "dated over five minutes ahead": signature.sign(SECRET, now + 301, "POST", "/reserve", body),
            "a v1 signature": v1,
            "garbage": "t=now,v2=zz",
        }
        for case, header in refused.items():
            with self.subTest(case):
                headers = {"Idempotency-Key": f"{op['id']}/reserve"}
                if header is not None:
                    headers["Herald-Signature"] = header
                status, content_type, problem = post(self.shop_server.port, "/reserve", body, headers)
                self.assertEqual(status, 401)
                self.assertEqual(content_type, "application/problem+json")
                self.assertEqual(problem["status"], 401)
        self.assertEqual(len(self.shop.calls), calls_before, "no refused request reached a handler")

        signed = signature.sign(SECRET, now, "POST", "/reserve", body)
        status, _, result = post(self.shop_server.port, "/reserve", body,
                                 {"Idempotency-Key": f"{op['id']}/reserve", "Herald-Signature": signed})
        self.assertEqual((status, result), (200, {"reservation": f"r-{op['id'][-6:]}"}))
        self.assertEqual(len(self.shop.calls), calls_before + 1)



class AnotherSecret(HeraldTestCase):
    shop_secret = "not-the-secret-herald-signs-with"

    def test_a_step_service_with_another_secret_than_heralds_fails_the_step_for_good(self):
        client = Client(self.herald.url, timeout=WITHIN)
        op = client.start("order", INPUT, wait=WITHIN)
        self.assertEqual(op["status"], "failed")
        self.assertEqual(op["outcome"]["failed_step"], "reserve")
        self.assertEqual([s for *_, s in self.shop.requests], [401], "refused once, not retried")
        self.assertEqual(self.shop.calls, [], "no handler ran")


class Callbacks(HeraldTestCase):
    def setUp(self):
        super().setUp()
        self.client = Client(self.herald.url, timeout=WITHIN)

    def test_a_step_that_answers_202_completes_later_through_the_callback(self):
        op = self.client.start("shipping", INPUT)
        events, watcher = self.watch_in_background(self.client.watch(op["id"], retry_for=WITHIN))
        ship = self.shop.call_of(op["id"], "ship")
        self.assertEqual(ship.callback.url, f"{self.herald.url}/v1/operations/{op['id']}/steps/ship:complete")
        wait_until("the watch sees the parcel shipping", lambda: seen(events, "step_awaiting", "ship"))
        self.assertEqual(self.client.get(op["id"])["status"], "running", "it waits for the callback")

        view = ship.callback.succeed({"tracking": "T-3"})

        self.assertEqual(view["id"], op["id"])
        self.assertEqual(next(s for s in view["steps"] if s["name"] == "ship")["status"], "succeeded")
        watcher.join(WITHIN)
        self.assertIsNone(watcher.error)
        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "succeeded")
        self.assertWholeTimeline(events, final)
        confirm = self.shop.call_of(op["id"], "confirm")
        self.assertEqual(confirm.results["ship"], {"tracking": "T-3"}, "the callback's result reached the next step")

        with self.assertRaises(HeraldError) as caught:
            ship.callback.succeed({"tracking": "T-4"})
        self.assertEqual((caught.exception.status, caught.exception.code), (409, "conflict"))
        forged = Callback(ship.callback.url, f"1.{int(time.time()) + 3600}.{'0' * 64}")
        with self.assertRaises(HeraldError) as caught:
            forged.succeed({"tracking": "T-5"})
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))

    def test_a_report_sent_before_herald_has_taken_in_the_202_lands_and_the_202_changes_nothing(self):
        reports = []
        refused = []

        def ship_at_once(call):
            # Reported before this call has even answered: herald takes it.
            reports.append(call.callback.succeed({"tracking": "T-7"}))
            try:
                reports.append(call.callback.succeed({"tracking": "again"}))
            except HeraldError as e:
                refused.append(e)
            return accepted()

        self.shop.step("/ship")(self.shop._record(ship_at_once))
        op = self.client.start("shipping", INPUT)

        watched = self.watch_all(self.client.watch(op["id"], retry_for=WITHIN))
        self.assertEqual(watched[-1]["type"], "succeeded")
        # The operation may end before the second report's answer is in.
        wait_until("the second report is answered", lambda: refused or len(reports) > 1)
        self.assertEqual([(e.status, e.code) for e in refused], [(409, "conflict")], "a second report is refused")
        self.assertEqual(len(reports), 1)
        ship = next(s for s in self.client.get(op["id"])["steps"] if s["name"] == "ship")
        self.assertEqual((ship["attempts"], ship["result"]), (1, {"tracking": "T-7"}))

    def test_a_step_reported_failed_through_its_callback_fails_the_operation_and_undoes_the_rest(self):
        op = self.client.start("shipping", INPUT)
        ship = self.shop.call_of(op["id"], "ship")

        # The callback as a service would have kept it: the envelope's object.
        fail(ship.envelope["callback"], "The parcel service is closed today.")

        watched = self.watch_all(self.client.watch(op["id"], retry_for=WITHIN))
        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "failed")
        self.assertWholeTimeline(watched, final)
        self.assertEqual(final["outcome"]["failed_step"], "ship")
        self.assertIn("The parcel service is closed today.", final["outcome"]["reason"])
        self.assertEqual(final["outcome"]["undone"], ["Items reserved"])
        self.assertFalse(seen(watched, "step_started", "confirm"))

    def test_a_retryable_failure_calls_again_and_only_the_new_attempts_token_opens_the_step(self):
        op = self.client.start("shipping", INPUT)
        first = self.shop.call_of(op["id"], "ship")
        self.assertEqual(first.attempt, 1)

        first.callback.fail("The parcel service is busy.", retryable=True)
        second = wait_until("herald calls ship again",
                            lambda: (c := self.shop.call_of(op["id"], "ship")).attempt == 2 and c)
        self.assertEqual(second.key, first.key, "every attempt carries the same Idempotency-Key")
        self.assertNotEqual(second.callback.token, first.callback.token)

        with self.assertRaises(HeraldError) as caught:
            first.callback.succeed({"tracking": "late"})
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "stale-callback-token"))
        complete(second.callback, {"tracking": "T-6"})

        wait_until("the operation succeeds", lambda: self.client.get(op["id"])["status"] == "succeeded")
        ship = next(s for s in self.client.get(op["id"])["steps"] if s["name"] == "ship")
        self.assertEqual((ship["attempts"], ship["result"]), (2, {"tracking": "T-6"}))


if __name__ == "__main__":
    unittest.main()
