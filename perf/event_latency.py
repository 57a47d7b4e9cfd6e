#!/usr/bin/env python3
"""Per-event latency of SSE streams in flight: worker emit -> client receive, direct vs proxied.

  perf/event_latency.py upstream --port P [--interval-ms MS]
  perf/event_latency.py client URL KEY --streams N --events E [--ramp-s S] [--out FILE.json]

`upstream` is a minimal OpenAI-compatible worker (asyncio, raw HTTP/1.1, keep-alive): GET /health,
/metrics (empty) and /v1/models answer 200; POST /v1/chat/completions streams max_tokens chat
chunks, one every --interval-ms, chunked, each token's content the CLOCK_MONOTONIC nanoseconds at
which it was written to the socket, then a usage chunk and [DONE]. The first token goes out one
interval after the request, so a stream's events do not bunch with the others' at the start.

`client` opens N keep-alive connections to URL (the upstream itself for "direct", or a proxy in
front of it), starts one stream on each within --ramp-s seconds, and for every token event records
its receive time (CLOCK_MONOTONIC, the same clock: both processes on this host) minus the stamp.
Prints one JSON object: p50/p90/p99/max of the per-event latency in microseconds, the count of
events, streams that did not finish. The client's own cost (one Python process) is the same for
every target, so proxied minus direct in the same run is what the proxy adds per event.
Loopback only; every loop is bounded by the stream count and a deadline.
"""
import asyncio, json, os, re, sys, time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from probe import chat_path, emit, options, parser, percentile, post_bytes  # noqa: E402

STAMP = re.compile(rb'"content":"(\d+)"')


# ------------------------------------------------------------------ upstream

class Worker(asyncio.Protocol):
    interval = 0.1

    def connection_made(self, transport):
        self.transport, self.buf, self.busy = transport, b"", False

    def data_received(self, data):
        self.buf += data
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            method, path = head.split(" ", 2)[:2]
            self.serve(method, path, body)

    def answer(self, body, content_type=b"application/json"):
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type +
                             b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def serve(self, method, path, body):
        if method == "POST" and path.startswith("/v1/chat/completions"):
            tokens = int(json.loads(body).get("max_tokens") or 16)
            self.busy = True
            asyncio.get_running_loop().create_task(self.stream(tokens))
        elif path.startswith("/v1/models"):
            self.answer(b'{"object":"list","data":[{"id":"bench","object":"model","owned_by":"perf","max_model_len":8192}]}')
        elif path.startswith("/metrics"):
            self.answer(b"", b"text/plain")
        else:
            self.answer(b"{}")

    def chunk(self, payload):
        self.transport.write(b"%x\r\n%s\r\n" % (len(payload), payload))

    async def stream(self, tokens):
        write = self.transport.write
        write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.chunk(b'data: {"id":"c","object":"chat.completion.chunk","model":"bench","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
        for _ in range(tokens):
            await asyncio.sleep(self.interval)
            if self.transport.is_closing():
                return
            self.chunk(b'data: {"id":"c","object":"chat.completion.chunk","model":"bench","choices":[{"index":0,"delta":{"content":"%d"}}]}\n\n'
                       % time.monotonic_ns())
        self.chunk(b'data: {"id":"c","object":"chat.completion.chunk","model":"bench","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d}}\n\n'
                   % (tokens, tokens + 8))
        self.chunk(b"data: [DONE]\n\n")
        write(b"0\r\n\r\n")
        self.busy = False
        if self.buf:
            self.data_received(b"")


async def start_upstream(port, interval_ms):
    Worker.interval = interval_ms / 1000
    return await asyncio.get_running_loop().create_server(Worker, "127.0.0.1", port, backlog=4096)


async def run_upstream(args):
    server = await start_upstream(args.port, args.interval_ms)
    print(f"event_latency upstream ready on 127.0.0.1:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------ client

class Stream(asyncio.Protocol):
    """One streamed request; decodes chunked framing and stamps each token event on arrival."""

    def __init__(self, latencies, done):
        self.latencies, self.done, self.buf, self.head, self.pending = latencies, done, b"", False, b""
        self.events = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.monotonic_ns()
        self.buf += data
        if not self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 200"):
                self.finish(RuntimeError(self.buf[:120]))
                return
            self.head, self.buf = True, self.buf[end + 4:]
        while True:
            line = self.buf.find(b"\r\n")
            if line < 0:
                return
            size = int(self.buf[:line].split(b";")[0], 16)
            if len(self.buf) < line + 2 + size + 2:
                return
            payload, self.buf = self.buf[line + 2:line + 2 + size], self.buf[line + 4 + size:]
            if size == 0:
                self.finish(None)
                return
            self.pending += payload
            while b"\n\n" in self.pending:
                event, _, self.pending = self.pending.partition(b"\n\n")
                m = STAMP.search(event)
                if m and m.group(1):
                    self.latencies.append((now - int(m.group(1))) / 1000)
                    self.events += 1

    def finish(self, error):
        if not self.done.done():
            self.done.set_result(error)

    def connection_lost(self, exc):
        self.finish(exc or ConnectionError("closed before the end"))


async def one_client(host, port, path, key, body, delay, latencies, failures, deadline):
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    try:
        transport, _ = await loop.create_connection(lambda: Stream(latencies, done), host, port)
    except OSError as error:
        failures.append(str(error))
        return
    transport.write(post_bytes(f"{host}:{port}", path, key, body))
    try:
        error = await asyncio.wait_for(done, max(1.0, deadline - loop.time()))
    except asyncio.TimeoutError:
        error = "timed out"
    if error is not None:
        failures.append(str(error))
    transport.close()


async def measure(args):
    """One client run; returns the report."""
    url = urlsplit(args.url)
    path = chat_path(args.url)
    body = json.dumps({"model": "bench", "stream": True, "max_tokens": args.events,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "per-event latency"}]}, separators=(",", ":")).encode()
    latencies, failures = [], []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.ramp_s + args.timeout_s
    await asyncio.gather(*(one_client(url.hostname, url.port, path, args.key, body, args.ramp_s * i / args.streams,
                                      latencies, failures, deadline) for i in range(args.streams)))
    report = {"target": args.url, "streams": args.streams, "events_per_stream": args.events,
              "events": len(latencies), "failed_streams": len(failures), "first_failure": failures[0] if failures else None,
              "latency_us": {"p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                             "p99": percentile(latencies, 99), "max": max(latencies) if latencies else None}}
    return report


async def run_client(args):
    emit(await measure(args), args.out)


def main():
    p = parser(__doc__)
    sub = p.add_subparsers(dest="mode", required=True)
    up = sub.add_parser("upstream")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--interval-ms", type=float, default=100)
    cl = options(sub.add_parser("client"), "url", "key")
    cl.add_argument("--streams", type=int, default=1000)
    cl.add_argument("--events", type=int, default=20)
    cl.add_argument("--ramp-s", type=float, default=1.0)
    cl.add_argument("--timeout-s", type=float, default=60.0)
    args = p.parse_args()
    asyncio.run(run_upstream(args) if args.mode == "upstream" else run_client(args))


if __name__ == "__main__":
    main()
