"""`signature.sign` and `signature.verify`, case by case as
`herald_core::signature` decides them (its unit tests, carried over)."""

import unittest

import harness  # noqa: F401 - puts the package on the path

from herald_client import SignatureError, signature

CHARGE = "/payment/charge"


class Signatures(unittest.TestCase):
    def assertRefused(self, reason, *args, **kwargs):
        with self.assertRaises(SignatureError) as caught:
            signature.verify(*args, **kwargs)
        self.assertEqual(caught.exception.reason, reason)

    def test_the_mac_is_hmac_sha256_over_time_method_target_and_body_joined_by_newlines(self):
        # Computed apart from this code:
        # printf '1000\nPOST\n/payment/charge\n{"a":1}' | openssl dgst -sha256 -hmac s3cret
        self.assertEqual(
            signature.sign("s3cret", 1000, "POST", CHARGE, b'{"a":1}'),
            "t=1000,v2=ceecc89df539e9149c0b8b4e06efaba07e151e8923844c42103b2d2e50c6aeed",
        )

    def test_a_signed_body_verifies_and_a_tampered_one_does_not(self):
        header = signature.sign(b"s3cret", 1000, "POST", CHARGE, b'{"a":1}')
        self.assertIsNone(signature.verify(b"s3cret", header, "POST", CHARGE, b'{"a":1}', now=1010))
        self.assertRefused(SignatureError.MISMATCH, b"s3cret", header, "POST", CHARGE, b'{"a":2}', now=1010)
        self.assertRefused(SignatureError.MISMATCH, b"other", header, "POST", CHARGE, b'{"a":1}', now=1010)

    def test_a_body_signed_for_one_endpoint_does_not_verify_at_another_or_with_another_method(self):
        body = b'{"amount":100}'
        header = signature.sign(b"s3cret", 1000, "POST", CHARGE, body)
        for method, target in [("POST", "/payment/refund"), ("PUT", CHARGE), ("POST", CHARGE + "?x=1")]:
            with self.subTest(method=method, target=target):
                self.assertRefused(SignatureError.MISMATCH, b"s3cret", header, method, target, body, now=1000)

    def test_a_dot_moved_between_path_and_body_does_not_verify(self):
        header = signature.sign(b"s3cret", 1000, "POST", "/x", b"5.0")
        self.assertRefused(SignatureError.MISMATCH, b"s3cret", header, "POST", "/x.5", b"0", now=1000)
        self.assertRefused(SignatureError.MALFORMED, b"s3cret", header, "POST", "/x\n5.0", b"", now=1000)

    def test_a_v1_signature_is_not_accepted(self):
        v1 = signature.sign(b"s3cret", 1000, "POST", CHARGE, b"x").replace("v2=", "v1=")
        self.assertRefused(SignatureError.MALFORMED, b"s3cret", v1, "POST", CHARGE, b"x", now=1000)

    def test_an_old_signature_is_a_replay_and_one_dated_ahead_is_refused_at_the_tolerance_either_way(self):
        tolerance = signature.TOLERANCE_SECS
        self.assertEqual(tolerance, 300)
        header = signature.sign(b"s3cret", 1000, "POST", "/", b"x")
        for now in (1000 - tolerance, 1000 + tolerance):
            self.assertIsNone(signature.verify(b"s3cret", header, "POST", "/", b"x", now=now))
        self.assertRefused(SignatureError.TOO_OLD, b"s3cret", header, "POST", "/", b"x", now=1000 + tolerance + 1)
        self.assertRefused(SignatureError.FROM_THE_FUTURE, b"s3cret", header, "POST", "/", b"x",
                           now=1000 - tolerance - 1)

    def test_a_mismatch_is_said_before_the_time(self):
        header = signature.sign(b"s3cret", 1000, "POST", "/", b"x")
        self.assertRefused(SignatureError.MISMATCH, b"other", header, "POST", "/", b"x", now=5000)

    def test_junk_is_malformed(self):
        good = signature.sign(b"s3cret", 1000, "POST", "/", b"x")
        digest = good.split("v2=")[1]
        for header in [
            "v2=zz", "t=1000", "", f"v2={digest}", f"t=1000,v2={digest[:-1]}", f"t=1000,v2={digest},v2=xyz",
            f"t=1000,v2= {digest[:2]} {digest[2:]}", f"t= 1000,v2={digest}", f"t=1e3,v2={digest}",
            f"t={2**63},v2={digest}", None,
        ]:
            with self.subTest(header=header):
                self.assertRefused(SignatureError.MALFORMED, b"s3cret", header, "POST", "/", b"x", now=1000)

    def test_any_one_of_several_v2_signatures_may_match_and_unknown_parts_are_ignored(self):
        good = signature.sign(b"s3cret", 1000, "POST", "/", b"x").split("v2=")[1]
        header = f"t=1000, v0=abc, v2={'00' * 32}, v2={good.upper()}"
        self.assertIsNone(signature.verify(b"s3cret", header, "POST", "/", b"x", now=1000))

    def test_the_timestamp_is_read_as_a_number(self):
        header = signature.sign(b"s3cret", 1000, "POST", "/", b"x").replace("t=1000", "t=+01000")
        self.assertIsNone(signature.verify(b"s3cret", header, "POST", "/", b"x", now=1000))

    def test_text_is_taken_as_utf8_and_the_raw_target_as_bytes(self):
        header = signature.sign("sécret", 1000, "POST", "/caf%C3%A9?q=1", "é")
        raw = ("sécret".encode(), header, b"POST", b"/caf%C3%A9?q=1", "é".encode())
        self.assertIsNone(signature.verify(*raw, now=1000))


if __name__ == "__main__":
    unittest.main()
