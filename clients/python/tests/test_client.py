"""The client against a real herald: starting, watching, reading,
cancelling, and herald's problems as `HeraldError`."""

import unittest

from harness import WITHIN, HeraldTestCase, seen

from herald_client import Client, HeraldError

ORDER_INPUT = {"customer": "alice", "items": [{"sku": "tea", "qty": 1}], "card": "4242"}


class StartAndWatch(HeraldTestCase):
    def setUp(self):
        super().setUp()
        self.client = Client(self.herald.url, timeout=WITHIN)

    def test_a_started_operation_is_watched_to_success_seeing_every_step_in_order(self):
        op = self.client.start("order", ORDER_INPUT)
        self.assertTrue(op["id"].startswith("op_"))
        self.assertEqual(op["workflow"], "order")
        self.assertIn(op["status"], ("accepted", "running", "succeeded"))

        watched = self.watch_all(self.client.watch(op["id"], retry_for=WITHIN))

        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "succeeded")
        self.assertWholeTimeline(watched, final)
        steps = [(e["type"], e.get("step")) for e in watched if e["type"].startswith("step_")]
        self.assertEqual(
            steps,
            [
                ("step_started", "reserve"), ("step_succeeded", "reserve"),
                ("step_started", "charge"), ("step_succeeded", "charge"),
                ("step_started", "confirm"), ("step_succeeded", "confirm"),
            ],
        )
        self.assertEqual(watched[0]["type"], "accepted")
        self.assertEqual(watched[-1]["type"], "succeeded")
        self.assertEqual(watched[-1]["message"], final["outcome"]["summary"])
        self.assertEqual(final["steps"][2]["result"], {"saw": ["charge", "reserve"]}, "results reach later steps")

    def test_a_watch_resumed_from_a_last_event_id_gets_exactly_the_rest(self):
        op = self.client.start("order", ORDER_INPUT, wait=WITHIN)
        self.assertEqual(op["status"], "succeeded")
        timeline = op["timeline"]
        self.assertGreater(len(timeline), 4)

        for after in (1, len(timeline) // 2, len(timeline) - 1):
            with self.subTest(after=after):
                watch = self.client.watch(op["id"], last_event_id=after, retry_for=WITHIN)
                self.assertEqual(self.watch_all(watch), timeline[after:])
                self.assertEqual(watch.last_event_id, len(timeline))
                self.assertEqual(watch.reconnects, 0)

    def test_a_watch_after_the_final_event_ends_at_once_with_nothing(self):
        op = self.client.start("order", ORDER_INPUT, wait=WITHIN)
        watch = self.client.watch(op["id"], last_event_id=op["last_seq"], retry_for=WITHIN)
        self.assertEqual(self.watch_all(watch), [], "herald answers 204: nothing is left")

    def test_prefer_wait_answers_with_the_finished_operation(self):
        op = self.client.start("order", ORDER_INPUT, wait=WITHIN)
        self.assertEqual(op["status"], "succeeded")
        self.assertEqual(op["timeline"][-1]["type"], "succeeded")
        self.assertEqual(op["outcome"]["succeeded"], ["Items reserved", "Card charged", "Confirmation sent"])

    def test_the_same_idempotency_key_gives_the_same_operation_and_another_body_is_refused(self):
        first = self.client.start("order", ORDER_INPUT, idempotency_key="order-1")
        again = self.client.start("order", ORDER_INPUT, idempotency_key="order-1")
        self.assertEqual(first["id"], again["id"])
        with self.assertRaises(HeraldError) as caught:
            self.client.start("order", {**ORDER_INPUT, "card": "other"}, idempotency_key="order-1")
        self.assertEqual(caught.exception.status, 422)
        self.assertEqual(caught.exception.type, "urn:herald:problem:idempotency-key-reused")
        self.assertEqual(caught.exception.operation_id, first["id"])

    def test_a_failing_step_leads_to_a_failed_outcome_that_get_shows(self):
        op = self.client.start("order", {**ORDER_INPUT, "card": "declined"})
        watched = self.watch_all(self.client.watch(op["id"], retry_for=WITHIN))

        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "failed")
        self.assertWholeTimeline(watched, final)
        self.assertEqual(watched[-1]["type"], "failed")
        self.assertTrue(seen(watched, "step_failed", "charge"))
        self.assertTrue(seen(watched, "step_compensated", "reserve"), "the reservation was put back")
        self.assertFalse(seen(watched, "step_started", "confirm"), "nothing ran after the failure")
        outcome = final["outcome"]
        self.assertEqual(outcome["failed_step"], "charge")
        self.assertEqual(outcome["undone"], ["Items reserved"])
        self.assertIn("Your card was declined.", outcome["reason"])
        charge = next(s for s in final["steps"] if s["name"] == "charge")
        self.assertEqual((charge["status"], charge["error"]), ("failed", "Your card was declined."))
        self.assertEqual(charge["attempts"], 1, "a 422 is not retried")
        undo = [c for c in self.shop.calls if c.step == "reserve" and c.phase == "compensation"]
        self.assertEqual([c.key for c in undo], [f"{op['id']}/reserve/compensate"])

    def test_cancelling_undoes_what_was_done_and_the_watch_ends_cancelled(self):
        op = self.client.start("shipping", ORDER_INPUT)
        self.shop.call_of(op["id"], "ship")  # reserved, and shipping until told otherwise

        cancelling = self.client.cancel(op["id"], "changed my mind")
        self.assertIn(cancelling["status"], ("compensating", "cancelled"))
        watched = self.watch_all(self.client.watch(op["id"], retry_for=WITHIN))

        self.assertEqual(watched[-1]["type"], "cancelled")
        self.assertEqual(watched[-1]["reason"], "changed my mind")
        self.assertTrue(seen(watched, "step_compensated", "reserve"))
        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "cancelled")
        self.assertWholeTimeline(watched, final)
        with self.assertRaises(HeraldError) as caught:
            self.client.cancel(op["id"], "again")
        self.assertEqual((caught.exception.status, caught.exception.code), (409, "conflict"))


class Problems(HeraldTestCase):
    """herald's errors are problem documents; each becomes a `HeraldError`
    with its status, type, title and detail."""

    def setUp(self):
        super().setUp()
        self.client = Client(self.herald.url, timeout=WITHIN)

    def assertProblem(self, caught, status, code):
        e = caught.exception
        self.assertEqual(e.status, status)
        self.assertEqual(e.type, f"urn:herald:problem:{code}")
        self.assertEqual(e.code, code)
        self.assertTrue(e.title, "a problem has a title")
        self.assertTrue(e.detail, "a problem has a detail")

    def test_an_unknown_workflow_is_a_404_unknown_workflow(self):
        with self.assertRaises(HeraldError) as caught:
            self.client.start("no-such-workflow", {})
        self.assertProblem(caught, 404, "unknown-workflow")
        self.assertIn("no-such-workflow", caught.exception.detail)

    def test_an_unknown_operation_is_a_404_not_found_on_get_cancel_and_watch(self):
        missing = "op_" + "0" * 32
        for name, act in [
            ("get", lambda: self.client.get(missing)),
            ("cancel", lambda: self.client.cancel(missing, "why not")),
            ("watch", lambda: self.watch_all(self.client.watch(missing, retry_for=WITHIN))),
        ]:
            with self.subTest(name), self.assertRaises(HeraldError) as caught:
                act()
            self.assertProblem(caught, 404, "not-found")

    def test_a_cancel_reason_longer_than_500_characters_is_a_422_invalid_input(self):
        with self.assertRaises(HeraldError) as caught:
            self.client.cancel(self.client.start("order", ORDER_INPUT)["id"], "x" * 501)
        self.assertProblem(caught, 422, "invalid-input")


if __name__ == "__main__":
    unittest.main()
