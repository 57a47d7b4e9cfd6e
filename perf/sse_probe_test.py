#!/usr/bin/env python3
"""perf/sse_probe.py's interleaved mode measures what it claims: python3 -m unittest discover -s perf -p 'sse_probe_test.py'

perf/compare.sh runs it before its streaming rounds. A worker that streams SSE the way the
simulator does and a relay that holds each of its bytes for a fixed delay (a slow proxy) run on
loopback in a thread of their own; the probe, interleaving the worker and the relay, must pair
each relay stream with the worker's of the same rotation and report at least the delay as added
time, while a second connection straight to the worker adds far less. A target that fails every
stream is counted, not paired. Bounded: a few rotations of a few events, each test under seconds.
"""
import asyncio
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sse_probe  # noqa: E402

DELAY_S = 0.02
BODY = sse_probe.request_body("m", 2)


async def worker(reader, writer, status=200):
    """Answers each request on the connection with a short chunked SSE stream (or an empty error)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            if status != 200:
                writer.write(b"HTTP/1.1 %d Busy\r\nContent-Length: 0\r\n\r\n" % status)
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for event in (b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n',
                          b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
                          b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n', b"data: [DONE]\n\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def relay(reader, writer, upstream_port):
    """A slow proxy: each byte from the worker reaches the client DELAY_S later."""
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    loop = asyncio.get_running_loop()

    async def forward_request():
        while data := await reader.read(65536):
            up_writer.write(data)
        up_writer.close()

    async def hold_answer():
        while data := await up_reader.read(65536):
            loop.call_later(DELAY_S, writer.write, data)
        loop.call_later(DELAY_S, writer.close)

    await asyncio.gather(forward_request(), hold_answer(), return_exceptions=True)


class Servers:
    """The worker, a relay in front of it and a worker that answers 503, on an event loop in a thread."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start():
            good = await asyncio.start_server(worker, "127.0.0.1", 0)
            port = good.sockets[0].getsockname()[1]
            slow = await asyncio.start_server(lambda r, w: relay(r, w, port), "127.0.0.1", 0)
            bad = await asyncio.start_server(lambda r, w: worker(r, w, status=503), "127.0.0.1", 0)
            return [good, slow, bad]

        self.servers = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.worker, self.relay, self.failing = (f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in self.servers)
        return self

    def __exit__(self, *_):
        async def stop():
            for s in self.servers:
                s.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class SseProbeTests(unittest.TestCase):
    def test_each_rotation_sends_every_target_once_and_each_target_leads_in_turn(self):
        orders = [sse_probe.rotation(3, r) for r in range(3)]

        self.assertEqual(orders, [[0, 1, 2], [1, 2, 0], [2, 0, 1]])
        self.assertTrue(all(sorted(order) == [0, 1, 2] for order in orders))

    def test_pairs_are_taken_rotation_by_rotation_and_skip_a_failed_stream_on_either_side(self):
        reference = [{"ttft_us": 100}, None, {"ttft_us": 300}, {"ttft_us": 400}]
        other = [{"ttft_us": 150}, {"ttft_us": 999}, None, {"ttft_us": None}]
        self.assertEqual(sse_probe.paired(reference, other, "ttft_us"), [50])

    def test_the_bootstrap_interval_holds_the_median_and_is_the_same_for_the_same_values(self):
        values = [float(v) for v in range(1, 102)]
        lo, hi = sse_probe.median_interval(values)

        self.assertLessEqual(lo, 51)
        self.assertGreaterEqual(hi, 51)
        self.assertLess(hi - lo, 40)
        self.assertEqual(sse_probe.median_interval(values), [lo, hi])
        self.assertEqual(sse_probe.median_interval([]), [None, None])

    def test_a_relay_that_holds_the_answer_adds_its_delay_and_a_second_direct_connection_does_not(self):
        with Servers() as s:
            targets = [sse_probe.Target("direct", s.worker), sse_probe.Target("slow", s.relay),
                       sse_probe.Target("again", s.worker)]
            report = sse_probe.interleave(targets, rotations=6, warmup=1, interval_s=0, key="k", body=BODY)

        self.assertEqual(report["reference"], "direct")
        got = report["targets"]
        self.assertEqual([got[n]["requests"] for n in ("direct", "slow", "again")], [6, 6, 6])
        self.assertEqual([got[n]["failures"] for n in ("direct", "slow", "again")], [0, 0, 0])
        self.assertEqual(got["slow"]["added_ttft_us"]["n"], 6)
        self.assertGreaterEqual(got["slow"]["added_ttft_us"]["p50"], DELAY_S * 1e6 * 0.9)
        self.assertGreaterEqual(got["slow"]["added_headers_us"]["p50"], DELAY_S * 1e6 * 0.9)
        lo, hi = got["slow"]["added_ttft_ci95_us"]
        self.assertLessEqual(lo, got["slow"]["added_ttft_us"]["p50"])
        self.assertGreaterEqual(hi, got["slow"]["added_ttft_us"]["p50"])
        # The same worker on another connection: what pairing leaves is the host's jitter, not the delay.
        self.assertLess(got["again"]["added_ttft_us"]["p50"], DELAY_S * 1e6 / 2)
        self.assertNotIn("added_ttft_us", got["direct"])

    def test_a_target_that_fails_every_stream_is_counted_and_never_paired(self):
        with Servers() as s:
            targets = [sse_probe.Target("direct", s.worker), sse_probe.Target("failing", s.failing)]
            report = sse_probe.interleave(targets, rotations=3, warmup=0, interval_s=0, key="k", body=BODY)

        got = report["targets"]
        self.assertEqual((got["direct"]["requests"], got["direct"]["failures"]), (3, 0))
        self.assertEqual((got["failing"]["requests"], got["failing"]["failures"]), (0, 3))
        self.assertEqual(got["failing"]["added_ttft_us"]["n"], 0)


if __name__ == "__main__":
    unittest.main()
