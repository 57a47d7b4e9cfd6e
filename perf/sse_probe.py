#!/usr/bin/env python3
"""Streaming latency probe for perf/compare.sh: time to first token and inter-token gaps.

Usage: perf/sse_probe.py URL KEY MODEL --requests N [--max-tokens T] [--interval-ms MS] [--out FILE.json]
       perf/sse_probe.py URL KEY MODEL --requests N --also NAME=URL [--also NAME=URL ...] [--name NAME] ...

One keep-alive HTTP/1.1 connection; N streamed chat completions, one after another, started on a
fixed schedule (every --interval-ms, or back to back when a stream runs longer). For each
request it records, in microseconds from the moment the request was handed to the kernel (one
send call; the time is taken just before it):
headers (the status line arrived), first_event (the first `data:` event, vLLM's role chunk) and
ttft (the first event that carries a token, `"delta":{"content":`), and every gap between token
events (itl). Chunked transfer encoding is decoded, so a proxy that re-chunks is measured by the
events, not by its chunk boundaries. Prints one JSON object with the percentiles.

Interleaved (--also): one keep-alive connection per target, URL's (named --name, "direct") the
reference. N rotations: each sends one stream to every target, one after another on the same
--interval-ms pacing, the first target moving by one each rotation, so every target meets the
host as the others do at that moment (the sequential mode, one target's N streams then the
next's, let the direct run move 113-345 µs from round to round). Per target: the percentiles
above, and the *paired* added time: per rotation, the target's TTFT (and headers) minus the
reference's in the same rotation, its p50/p90/p99 and a bootstrap 95% interval of its median.

The client's own cost (Python, on the load core) is the same for every target, so a difference
between a proxy and the direct run is the proxy's. perf/AotProxy.Load (the open-loop runner)
measures TTFT and inter-token gaps under load; compare.sh calls this probe from one function.
"""
import json, os, random, statistics, sys, time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from probe import Connection, chat_path, emit, options, parser, percentile, schedule, summary  # noqa: E402

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


class Target:
    """One target: its URL, its keep-alive connection (opened anew after a failure), its results."""

    def __init__(self, name, url):
        self.name, self.url, self.parts = name, url, urlsplit(url)
        self.path = chat_path(url)
        self.conn = Connection(self.parts.hostname, self.parts.port or 80)
        self.results, self.failures = [], 0

    def stream(self, key, body):
        """One stream; its result, or None (counted, and the connection opened anew) when it failed."""
        try:
            return one_stream(self.conn, self.parts.netloc, self.path, key, body)
        except (ConnectionError, RuntimeError, ValueError, IndexError) as error:
            self.failures += 1
            print(f"sse_probe: {self.name}: {error}", file=sys.stderr)
            self.close()
            self.conn = Connection(self.parts.hostname, self.parts.port or 80)
            return None

    def close(self):
        self.conn.sock.close()


def rotation(count, r):
    """The order of rotation r over count targets: each once, the first moving by one per rotation."""
    return [(k + r) % count for k in range(count)]


def paired(reference, other, field):
    """Per rotation, other's field minus reference's, where both streams gave a value."""
    return [o[field] - d[field] for d, o in zip(reference, other)
            if d is not None and o is not None and d[field] is not None and o[field] is not None]


def median_interval(values, resamples=1000, seed=22):
    """Bootstrap 95% interval of the median (fixed seed: the same values give the same interval)."""
    if not values:
        return [None, None]
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return [percentile(medians, 2.5), percentile(medians, 97.5)]


def target_report(url, results, failures):
    """The percentiles of one target's completed streams (None: a failed one)."""
    done = [r for r in results if r is not None]

    def with_mean(values):
        values = [v for v in values if v is not None]
        return {**summary(values), "mean": statistics.fmean(values) if values else None}

    return {
        "target": url, "requests": len(done), "failures": failures,
        "incomplete": sum(1 for r in done if not r["done"]),
        "headers_us": with_mean(r["headers_us"] for r in done),
        "first_event_us": with_mean(r["first_event_us"] for r in done),
        "ttft_us": with_mean(r["ttft_us"] for r in done),
        "itl_us": with_mean(v for r in done for v in r["itl_us"]),
    }


def interleave(targets, rotations, warmup, interval_s, key, body):
    """Runs warmup + rotations rotations; targets[0] is the reference. Returns the report."""
    n = len(targets)
    for i in schedule((warmup + rotations) * n, interval_s):
        r, k = divmod(i, n)
        target = targets[rotation(n, r)[k]]
        result = target.stream(key, body)
        if r >= warmup:
            target.results.append(result)
    for target in targets:
        target.close()
    reference = targets[0]
    report = {"mode": "interleaved", "reference": reference.name, "rotations": rotations,
              "interval_ms": interval_s * 1000, "targets": {}}
    for t in targets:
        one = target_report(t.url, t.results, t.failures)
        if t is not reference:
            added = paired(reference.results, t.results, "ttft_us")
            one["added_ttft_us"] = summary(added)
            one["added_ttft_ci95_us"] = median_interval(added)
            one["added_headers_us"] = summary(paired(reference.results, t.results, "headers_us"))
        report["targets"][t.name] = one
    return report


def request_body(model, max_tokens):
    return json.dumps({
        "model": model, "stream": True, "max_tokens": max_tokens, "ignore_eos": True,
        "messages": [{"role": "user", "content": "Say something about proxies."}],
    }, separators=(",", ":")).encode()


def main():
    p = options(parser(__doc__), "url", "key", "model", warmup=10)
    p.add_argument("--requests", type=int, default=100, help="streams, or rotations with --also")
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--interval-ms", type=float, default=0)
    p.add_argument("--also", action="append", default=[], metavar="NAME=URL",
                   help="another target, interleaved with URL's streams (paired against URL's)")
    p.add_argument("--name", default="direct", help="URL's name in the interleaved report")
    args = p.parse_args()

    body = request_body(args.model, args.max_tokens)
    if args.also:
        targets = [Target(args.name, args.url)] + [Target(*spec.split("=", 1)) for spec in args.also]
        emit(interleave(targets, args.requests, args.warmup, args.interval_ms / 1000, args.key, body), args.out)
        return
    target = Target(args.name, args.url)
    for i in schedule(args.warmup + args.requests, args.interval_ms / 1000):
        result = target.stream(args.key, body)
        if i >= args.warmup and result is not None:
            target.results.append(result)
    target.close()
    emit(target_report(args.url, target.results, target.failures), args.out)


if __name__ == "__main__":
    main()
