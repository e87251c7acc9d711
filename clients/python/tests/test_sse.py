"""The event-stream framing, bytes in, messages out."""

import unittest

import harness  # noqa: F401 - puts the package on the path

from herald_client.sse import Decoder, Message


def decode(*chunks):
    decoder = Decoder()
    return [m for chunk in chunks for m in decoder.feed(chunk)]


class Framing(unittest.TestCase):
    def test_herald_frames_become_messages_with_their_ids(self):
        stream = b'id: 1\ndata: {"seq":1}\n\nid: 2\ndata: {"seq":2}\n\n'
        self.assertEqual(decode(stream), [Message('{"seq":1}', "message", "1"), Message('{"seq":2}', "message", "2")])

    def test_a_frame_split_anywhere_across_chunks_is_the_same_frame(self):
        stream = b'id: 7\r\ndata: {"s":"\xc3\xa9"}\r\n\r\n'
        whole = decode(stream)
        self.assertEqual(whole, [Message('{"s":"é"}', "message", "7")])
        for cut in range(1, len(stream)):
            with self.subTest(cut=cut):
                self.assertEqual(decode(stream[:cut], stream[cut:]), whole)
        self.assertEqual(decode(*[bytes([b]) for b in stream]), whole)

    def test_lines_may_end_in_crlf_lf_or_cr(self):
        for end in (b"\r\n", b"\n", b"\r"):
            with self.subTest(end=end):
                self.assertEqual(decode(b"data: a" + end + b"data: b" + end + end), [Message("a\nb", "message", None)])

    def test_comments_and_frames_without_data_send_nothing(self):
        self.assertEqual(decode(b": keep-alive\n\n:\n\nid: 3\n\n"), [])

    def test_the_last_id_carries_over_to_messages_without_one(self):
        self.assertEqual(
            decode(b"id: 3\ndata: a\n\ndata: b\n\n"), [Message("a", "message", "3"), Message("b", "message", "3")]
        )

    def test_only_one_space_after_the_colon_is_taken_off_and_a_field_without_colon_is_empty(self):
        self.assertEqual(decode(b"data:  two\ndata\n\n"), [Message(" two\n", "message", None)])

    def test_a_byte_order_mark_may_open_the_stream(self):
        self.assertEqual(decode(b"\xef\xbb", b"\xbfdata: x\n\n"), [Message("x", "message", None)])

    def test_event_names_and_retry_are_read(self):
        decoder = Decoder()
        self.assertEqual(decoder.feed(b"retry: 2500\nevent: ping\ndata: x\n\n"), [Message("x", "ping", None)])
        self.assertEqual(decoder.retry_ms, 2500)

    def test_an_unfinished_frame_waits_for_its_blank_line(self):
        decoder = Decoder()
        self.assertEqual(decoder.feed(b"id: 1\ndata: x\n"), [])
        self.assertEqual(decoder.feed(b"\n"), [Message("x", "message", "1")])


if __name__ == "__main__":
    unittest.main()
