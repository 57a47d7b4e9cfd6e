#!/usr/bin/env python3
"""perf/lib/probe.py, what the probes share: python3 -m unittest discover -s perf -p 'probe_test.py'

A chunked body read from a socket that delivers it a few bytes at a time must come out whole, chunk
by chunk, and end at the zero-size chunk with the next response's bytes left in the buffer; the
request the probes send must be one valid HTTP/1.1 POST; summaries skip missing values.
"""
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import probe  # noqa: E402


class SocketConnection(probe.Connection):
    """probe.Connection over one end of a socket pair (no TCP connect)."""

    def __init__(self, sock):  # noqa: super().__init__ would connect
        self.sock, self.buf = sock, b""


class ProbeTests(unittest.TestCase):
    def test_read_chunk_returns_each_chunk_whole_however_the_bytes_arrive(self):
        body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\nHTTP/1.1 200 OK"
        ours, theirs = socket.socketpair()
        with ours, theirs:
            ours.settimeout(10)  # bounded: a read that waits for bytes that never come fails
            def dribble():
                for i in range(0, len(body), 3):
                    theirs.sendall(body[i:i + 3])

            sender = threading.Thread(target=dribble)
            sender.start()
            conn = SocketConnection(ours)
            chunks = [conn.read_chunk() for _ in range(3)]
            sender.join(10)

            self.assertEqual(chunks, [b"hello", b", world", b""])
            while len(conn.buf) < len(b"HTTP/1.1 200 OK"):
                conn.fill()
            self.assertEqual(conn.buf, b"HTTP/1.1 200 OK")  # the next answer's bytes stay

    def test_the_request_is_one_post_whose_length_is_its_body(self):
        request = probe.post_bytes("h:1", "/v1/chat/completions", "sk", b'{"a":1}')
        head, _, body = request.partition(b"\r\n\r\n")

        self.assertTrue(head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: h:1\r\n"), head)
        self.assertIn(b"\r\nAuthorization: Bearer sk\r\n", head + b"\r\n")
        self.assertIn(b"\r\nContent-Length: 7", head)
        self.assertEqual(body, b'{"a":1}')

    def test_a_url_without_a_path_posts_to_chat_completions(self):
        self.assertEqual(probe.chat_path("http://h:1"), "/v1/chat/completions")
        self.assertEqual(probe.chat_path("http://h:1/"), "/v1/chat/completions")
        self.assertEqual(probe.chat_path("http://h:1/v1/completions"), "/v1/completions")

    def test_summary_skips_missing_values(self):
        self.assertEqual(probe.summary([3, None, 1, 2]), {"n": 3, "p50": 2, "p90": 3, "p99": 3})
        self.assertEqual(probe.summary([None]), {"n": 0, "p50": None, "p90": None, "p99": None})

    def test_schedule_yields_every_index_once(self):
        self.assertEqual(list(probe.schedule(4, 0)), [0, 1, 2, 3])


if __name__ == "__main__":
    unittest.main()
