"""With `[auth]`: a service's token starts operations; an end user's JWT
reads and watches their own, and nobody else's."""

import base64
import hashlib
import hmac
import json
import time
import unittest

from harness import WITHIN, HeraldTestCase

from herald_client import Client, HeraldError

USERS_SECRET = "the-identity-providers-secret-of-32-chars-or-more"
SERVICE_TOKEN = "shop-service-token-for-tests"
INPUT = {"customer": "alice", "items": [{"sku": "tea", "qty": 1}]}


def jwt(sub, *, expires_in=600, secret=USERS_SECRET):
    """An HS256 JWT as the application's identity provider would issue it."""

    def part(value):
        raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {"sub": sub, "exp": int(time.time()) + expires_in, "iss": "https://id.test", "aud": "herald"}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(mac)}"


class Tokens(HeraldTestCase):
    extra_config = (
        "[auth]\n"
        f'users = {{ algorithm = "HS256", secret = "{USERS_SECRET}", '
        'issuer = "https://id.test", audience = "herald" }\n'
        f'tokens = [{{ name = "shop", token = "{SERVICE_TOKEN}", role = "service" }}]\n'
    )

    def setUp(self):
        super().setUp()
        self.shop_client = Client(self.herald.url, SERVICE_TOKEN, timeout=WITHIN)

    def test_a_request_without_a_token_is_a_401_problem(self):
        with self.assertRaises(HeraldError) as caught:
            Client(self.herald.url).start("order", INPUT)
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))

    def test_an_end_user_watches_their_own_operation_with_their_token(self):
        op = self.shop_client.start("order", INPUT, subject="alice")
        alice = Client(self.herald.url, jwt("alice"), timeout=WITHIN)

        watched = self.watch_all(alice.watch(op["id"], retry_for=WITHIN))

        seen_by_alice = alice.get(op["id"])
        self.assertEqual(seen_by_alice["status"], "succeeded")
        self.assertEqual(watched, seen_by_alice["timeline"])
        self.assertEqual(seen_by_alice["input"], {}, "an end user sees none of the input unless the workflow lists it")
        self.assertTrue(all(s["result"] is None for s in seen_by_alice["steps"]), "nor the steps' raw results")

    def test_an_end_user_is_told_anyone_elses_operation_does_not_exist(self):
        op = self.shop_client.start("order", INPUT, subject="alice")
        bob = Client(self.herald.url, jwt("bob"), timeout=WITHIN)
        for name, act in [("get", lambda: bob.get(op["id"])), ("watch", lambda: self.watch_all(bob.watch(op["id"])))]:
            with self.subTest(name), self.assertRaises(HeraldError) as caught:
                act()
            self.assertEqual((caught.exception.status, caught.exception.code), (404, "not-found"))

    def test_an_end_user_cannot_start_operations_and_an_expired_token_is_refused(self):
        with self.assertRaises(HeraldError) as caught:
            Client(self.herald.url, jwt("alice")).start("order", INPUT)
        self.assertEqual((caught.exception.status, caught.exception.code), (403, "forbidden"))
        op = self.shop_client.start("order", INPUT, subject="alice")
        with self.assertRaises(HeraldError) as caught:
            Client(self.herald.url, jwt("alice", expires_in=-120)).get(op["id"])
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))


if __name__ == "__main__":
    unittest.main()
