"""A watch across dropped connections: reopened with `Last-Event-ID`, it
hands out every event once, in order, however the connection was lost.

Each test holds its operation mid-way (the ``ship`` step answers 202 and
waits for its callback), drops the stream while it is held, lets the
operation finish, and compares what was watched with herald's timeline.
"""

import unittest

from harness import WITHIN, HeraldTestCase, Proxy, seen, wait_until

from herald_client import Client

INPUT = {"customer": "alice", "items": [{"sku": "tea", "qty": 1}]}


class DroppedStreams(HeraldTestCase):
    def setUp(self):
        super().setUp()
        self.client = Client(self.herald.url, timeout=WITHIN)

    def test_a_connection_cut_mid_way_is_resumed_without_loss_or_repeat(self):
        proxy = Proxy(self.herald.port)
        self.addCleanup(proxy.close)
        op = self.client.start("shipping", INPUT)
        watch = Client(proxy.url).watch(op["id"], retry_for=WITHIN)
        events, watcher = self.watch_in_background(watch)
        wait_until("the watch sees the parcel shipping", lambda: seen(events, "step_awaiting", "ship"))
        ship = self.shop.call_of(op["id"], "ship")
        before_cut = len(events)

        # Cut the stream and keep it down while the rest of the operation
        # happens: all of it must come from herald's store on reconnect.
        proxy.hold()
        proxy.cut()
        wait_until("the watch tries again and is refused", lambda: proxy.refused >= 1)
        ship.callback.succeed({"tracking": "T-1"})
        wait_until("the operation ends", lambda: self.client.get(op["id"])["status"] == "succeeded")
        self.assertEqual(len(events), before_cut, "nothing can have come while the stream was down")
        proxy.release()
        watcher.join(WITHIN)

        self.assertFalse(watcher.is_alive(), "the watch ended after the final event")
        self.assertIsNone(watcher.error)
        self.assertWholeTimeline(events, self.client.get(op["id"]))
        self.assertEqual(events[-1]["type"], "succeeded")
        self.assertGreaterEqual(watch.reconnects, 1)
        resumed = [head for head in proxy.requests()[1:] if "last-event-id" in head.lower()]
        self.assertTrue(resumed, "the watch reconnected with Last-Event-ID")
        self.assertIn(f"Last-Event-ID: {before_cut}\r\n", resumed[0] + "\r\n")

    def test_a_herald_killed_and_restarted_mid_stream_loses_and_repeats_nothing(self):
        op = self.client.start("shipping", INPUT)
        watch = self.client.watch(op["id"], retry_for=WITHIN)
        events, watcher = self.watch_in_background(watch)
        wait_until("the watch sees the parcel shipping", lambda: seen(events, "step_awaiting", "ship"))
        ship = self.shop.call_of(op["id"], "ship")

        self.herald.kill()
        self.herald.start()  # the same port and data directory
        ship.callback.succeed({"tracking": "T-2"})
        watcher.join(WITHIN)

        self.assertFalse(watcher.is_alive(), "the watch ended after the final event")
        self.assertIsNone(watcher.error)
        final = self.client.get(op["id"])
        self.assertEqual(final["status"], "succeeded")
        self.assertWholeTimeline(events, final)
        self.assertGreaterEqual(watch.reconnects, 1, "the stream died with herald and was reopened")
        ship_step = next(s for s in final["steps"] if s["name"] == "ship")
        self.assertEqual(ship_step["result"], {"tracking": "T-2"})

    def test_a_watch_that_cannot_reconnect_gives_up_after_retry_for_with_the_error(self):
        op = self.client.start("shipping", INPUT)
        watch = self.client.watch(op["id"], retry_for=0.5)
        events, watcher = self.watch_in_background(watch)
        wait_until("the watch sees the parcel shipping", lambda: seen(events, "step_awaiting", "ship"))

        self.herald.kill()
        watcher.join(WITHIN)

        self.assertFalse(watcher.is_alive(), "the watch gave up")
        self.assertIsInstance(watcher.error, OSError, "the connection error is raised")
        self.assertEqual(watch.last_event_id, events[-1]["seq"], "where to resume from later")

    def test_closing_a_watch_from_another_thread_ends_it_at_once(self):
        op = self.client.start("shipping", INPUT)
        watch = self.client.watch(op["id"], retry_for=WITHIN)
        events, watcher = self.watch_in_background(watch)
        wait_until("the watch sees the parcel shipping", lambda: seen(events, "step_awaiting", "ship"))

        watch.close()
        watcher.join(WITHIN)

        self.assertFalse(watcher.is_alive(), "a watch blocked on a quiet stream stopped when closed")
        self.assertIsNone(watcher.error)


if __name__ == "__main__":
    unittest.main()
