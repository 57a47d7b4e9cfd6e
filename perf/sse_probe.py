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
import json, os, statistics, sys, time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from probe import Connection, chat_path, emit, options, parser, schedule, summary  # noqa: E402

TOKEN = b'"delta":{"content":'


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
        chunk = conn.read_chunk()
        now = time.perf_counter_ns()  # when this chunk was complete
        if not chunk:
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


def main():
    p = options(parser(__doc__), "url", "key", "model", warmup=10)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--interval-ms", type=float, default=0)
    args = p.parse_args()

    url = urlsplit(args.url)
    conn = Connection(url.hostname, url.port or 80)
    body = json.dumps({
        "model": args.model, "stream": True, "max_tokens": args.max_tokens, "ignore_eos": True,
        "messages": [{"role": "user", "content": "Say something about proxies."}],
    }, separators=(",", ":")).encode()
    path = chat_path(args.url)
    results, failures = [], 0
    for i in schedule(args.warmup + args.requests, args.interval_ms / 1000):
        try:
            r = one_stream(conn, url.netloc, path, args.key, body)
        except (ConnectionError, RuntimeError) as error:
            failures += 1
            print(f"sse_probe: {error}", file=sys.stderr)
            conn = Connection(url.hostname, url.port or 80)
            continue
        if i >= args.warmup:
            results.append(r)

    def with_mean(values):
        values = [v for v in values if v is not None]
        return {**summary(values), "mean": statistics.fmean(values) if values else None}

    report = {
        "target": args.url, "requests": len(results), "failures": failures,
        "incomplete": sum(1 for r in results if not r["done"]),
        "headers_us": with_mean(r["headers_us"] for r in results),
        "first_event_us": with_mean(r["first_event_us"] for r in results),
        "ttft_us": with_mean(r["ttft_us"] for r in results),
        "itl_us": with_mean(v for r in results for v in r["itl_us"]),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
