#!/usr/bin/env python3
"""Streaming latency probe for perf/compare.sh: time to first token and inter-token gaps.

Usage: perf/sse_probe.py URL KEY MODEL --requests N [--max-tokens T] [--interval-ms MS] [--out FILE.json]

One keep-alive HTTP/1.1 connection; N streamed chat completions, one after another, started on a
fixed schedule (every --interval-ms, or back to back when a stream runs longer). For each
request it records, in microseconds from the moment the request was handed to the kernel (one
send call; the time is taken just before it):
headers (the status line arrived), first_event (the first `data:` event, vLLM's role chunk) and
ttft (the first event that carries a token, `"delta":{"content":`), and every gap between token
events (itl). Chunked transfer encoding is decoded, so a proxy that re-chunks is measured by the
events, not by its chunk boundaries. Prints one JSON object with the percentiles.

The client's own cost (Python, on the load core) is the same for every target, so a difference
between a proxy and the direct run is the proxy's. perf/AotProxy.Load (the open-loop runner)
measures TTFT and inter-token gaps under load; compare.sh calls this probe from one function.
"""
import argparse, json, socket, statistics, sys, time
from urllib.parse import urlsplit

TOKEN = b'"delta":{"content":'


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data
        return time.perf_counter_ns()

    def post(self, host_header, path, key, body):
        """Sends one JSON POST in one send; returns the time just before it (perf_counter_ns).

        Before, not after: a server on this core (the simulator, direct) can run inside the send,
        woken by the loopback delivery, and write its answer before the call returns; a time taken
        after the send then hides that server's work (~200 µs of the simulator's, seen in a
        packet capture), and the proxies, on the other core, looked that much slower than direct."""
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.perf_counter_ns()
        self.sock.sendall(request)
        return sent

    def read_until(self, marker):
        while marker not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(marker)
        return head


def one_stream(conn, host_header, path, key, body):
    sent = conn.post(host_header, path, key, body)
    head = conn.read_until(b"\r\n\r\n")
    headers_at = time.perf_counter_ns()
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    chunked = b"transfer-encoding: chunked" in lower
    if status != 200:
        raise RuntimeError(f"status {status}: {head[:200]!r}")
    if not chunked:
        raise RuntimeError("expected a chunked SSE response (keep-alive needs an end marker)")
    events, pending = [], b""
    while True:
        size_line = conn.read_until(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(conn.buf) < size + 2:
            conn.fill()
        now = time.perf_counter_ns()  # when this chunk was complete
        chunk, conn.buf = conn.buf[:size], conn.buf[size + 2:]
        if size == 0:
            break
        pending += chunk
        while b"\n\n" in pending:
            event, _, pending = pending.partition(b"\n\n")
            events.append((now, event))
    first_event = events[0][0] if events else None
    token_times = [t for t, e in events if TOKEN in e]
    return {
        "headers_us": (headers_at - sent) / 1000,
        "first_event_us": (first_event - sent) / 1000 if first_event else None,
        "ttft_us": (token_times[0] - sent) / 1000 if token_times else None,
        "itl_us": [(b - a) / 1000 for a, b in zip(token_times, token_times[1:])],
        "done": bool(events) and events[-1][1].strip() == b"data: [DONE]",
    }


def emit(report, out):
    """Prints the report as one JSON line, and writes it to OUT too when given."""
    text = json.dumps(report)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("model")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--interval-ms", type=float, default=0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out")
    args = parser.parse_args()

    url = urlsplit(args.url)
    conn = Connection(url.hostname, url.port or 80)
    body = json.dumps({
        "model": args.model, "stream": True, "max_tokens": args.max_tokens, "ignore_eos": True,
        "messages": [{"role": "user", "content": "Say something about proxies."}],
    }, separators=(",", ":")).encode()
    path = url.path if url.path not in ("", "/") else "/v1/chat/completions"
    results, failures = [], 0
    next_start = time.perf_counter()
    for i in range(args.warmup + args.requests):
        delay = next_start - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        next_start = max(next_start + args.interval_ms / 1000, time.perf_counter())
        try:
            r = one_stream(conn, url.netloc, path, args.key, body)
        except (ConnectionError, RuntimeError) as error:
            failures += 1
            print(f"sse_probe: {error}", file=sys.stderr)
            conn = Connection(url.hostname, url.port or 80)
            continue
        if i >= args.warmup:
            results.append(r)

    def summary(values):
        values = [v for v in values if v is not None]
        return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
                "p99": percentile(values, 99), "mean": statistics.fmean(values) if values else None}

    report = {
        "target": args.url, "requests": len(results), "failures": failures,
        "incomplete": sum(1 for r in results if not r["done"]),
        "headers_us": summary(r["headers_us"] for r in results),
        "first_event_us": summary(r["first_event_us"] for r in results),
        "ttft_us": summary(r["ttft_us"] for r in results),
        "itl_us": summary(v for r in results for v in r["itl_us"]),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
