#!/usr/bin/env python3
"""Interleaved pairs for perf/compare.sh --overhead: what a proxy adds to one request.

Usage: perf/pair_probe.py DIRECT_URL PROXY_URL KEY BODY_FILE --pairs N [--rate PAIRS_PER_S] [--out FILE.json]

Two keep-alive HTTP/1.1 connections, one to the backend directly and one through the proxy. Each
pair sends the same non-stream request on both, one after the other, the order alternating from
pair to pair, so that whatever else the host does at that moment (the background load at a share
of capacity, another process) lands on both halves alike. A request's time runs from just
before its one send call (lib/probe.py's Connection.post says why) to the response's last byte. Prints one JSON object: direct and proxy percentiles, and
the added time per pair (proxy minus direct) at p50, p90 and p99.
"""
import os
import sys
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from probe import Connection, chat_path, emit, options, parser, schedule, summary  # noqa: E402


def one_request(conn, host_header, path, key, body):
    sent = conn.post(host_header, path, key, body)
    head = conn.read_until(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is not None:
        while len(conn.buf) < length:
            conn.fill()
        conn.buf = conn.buf[length:]
    else:  # chunked: until the zero-size chunk
        while conn.read_chunk():
            pass
    done = time.perf_counter_ns()
    if status != 200:
        raise RuntimeError(f"status {status}: {head[:200]!r}")
    return (done - sent) / 1000


def main():
    p = options(parser(__doc__), "direct", "proxy", "key", "body", warmup=20)
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--rate", type=float, default=100.0)
    args = p.parse_args()

    with open(args.body, "rb") as f:
        body = f.read()
    targets = []
    for url in (args.direct, args.proxy):
        parts = urlsplit(url)
        targets.append((parts, Connection(parts.hostname, parts.port or 80)))
    direct, proxy, added, failures = [], [], [], 0
    for i in schedule(args.warmup + args.pairs, 1 / args.rate):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        times = [0.0, 0.0]
        try:
            for k in order:
                parts, conn = targets[k]
                times[k] = one_request(conn, parts.netloc, chat_path(parts.geturl()), args.key, body)
        except (ConnectionError, RuntimeError) as error:
            failures += 1
            print(f"pair_probe: {error}", file=sys.stderr)
            targets = [(parts, Connection(parts.hostname, parts.port or 80)) for parts, _ in targets]
            continue
        if i >= args.warmup:
            direct.append(times[0])
            proxy.append(times[1])
            added.append(times[1] - times[0])
    report = {"direct": args.direct, "proxy": args.proxy, "pairs": len(added), "failures": failures,
              "direct_us": summary(direct), "proxy_us": summary(proxy), "added_us": summary(added)}
    emit(report, args.out)


if __name__ == "__main__":
    main()
