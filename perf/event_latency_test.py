#!/usr/bin/env python3
"""perf/event_latency.py measures what it claims: python3 -m unittest discover -s perf -p 'event_latency_test.py'

perf/event_latency.sh runs it before it measures anything. The stamping worker and the client run
in one event loop on loopback; a relay that holds every byte for a fixed delay stands in for a slow
proxy, so the client must report at least that delay per event, and a worker that cuts a stream
must count as a failed stream. Bounded: a few streams of a few events, each test under seconds.
"""
import argparse
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import event_latency  # noqa: E402

INTERVAL_MS = 20


class DelayingRelay(asyncio.Protocol):
    """Forwards each side's bytes to the other after `delay` seconds (a slow proxy)."""

    delay = 0.0
    upstream_port = 0

    def connection_made(self, transport):
        self.client, self.pending, self.upstream = transport, [], None
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self):
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.Protocol):
            def data_received(self, data):
                loop.call_later(relay.delay, relay.client.write, data)

            def connection_lost(self, exc):
                loop.call_later(relay.delay, relay.client.close)

        self.upstream, _ = await loop.create_connection(Back, "127.0.0.1", self.upstream_port)
        for data in self.pending:
            self.upstream.write(data)

    def data_received(self, data):
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc):
        if self.upstream is not None:
            self.upstream.close()


def client_args(port, streams=4, events=3):
    return argparse.Namespace(url=f"http://127.0.0.1:{port}", key="k", streams=streams, events=events,
                              ramp_s=0.05, timeout_s=10.0, out=None)


class EventLatencyTests(unittest.TestCase):
    def run_with_upstream(self, body):
        async def go():
            upstream = await event_latency.start_upstream(0, INTERVAL_MS)
            try:
                return await body(upstream.sockets[0].getsockname()[1])
            finally:
                upstream.close()

        return asyncio.run(asyncio.wait_for(go(), 30))

    def test_direct_counts_every_token_event_and_times_it_from_its_stamp(self):
        report = self.run_with_upstream(lambda port: event_latency.measure(client_args(port)))

        self.assertEqual(report["failed_streams"], 0, report)
        self.assertEqual(report["events"], 4 * 3)  # the role chunk and usage chunk carry no stamp
        self.assertGreaterEqual(report["latency_us"]["p50"], 0)
        self.assertLess(report["latency_us"]["max"], 1_000_000)

    def test_a_relay_that_holds_each_event_adds_its_delay_to_every_event(self):
        async def through_relay(port):
            DelayingRelay.delay, DelayingRelay.upstream_port = 0.03, port
            relay = await asyncio.get_running_loop().create_server(DelayingRelay, "127.0.0.1", 0)
            try:
                return await event_latency.measure(client_args(relay.sockets[0].getsockname()[1]))
            finally:
                relay.close()

        report = self.run_with_upstream(through_relay)

        self.assertEqual(report["failed_streams"], 0, report)
        self.assertEqual(report["events"], 4 * 3)
        self.assertGreaterEqual(report["latency_us"]["p50"], 30_000)
        self.assertLess(report["latency_us"]["p50"], 1_000_000)

    def test_a_stream_the_worker_cuts_is_a_failed_stream(self):
        async def cut(port):
            original = event_latency.Worker.stream

            async def one_event_then_close(worker, tokens):
                worker.transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                worker.chunk(b'data: {"choices":[{"delta":{"content":"1"}}]}\n\n')
                worker.transport.close()

            event_latency.Worker.stream = one_event_then_close
            try:
                return await event_latency.measure(client_args(port, streams=2))
            finally:
                event_latency.Worker.stream = original

        report = self.run_with_upstream(cut)

        self.assertEqual(report["failed_streams"], 2, report)


if __name__ == "__main__":
    unittest.main()
