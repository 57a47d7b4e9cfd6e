#!/usr/bin/env python3
"""perf/pre_send.py: the gateway's own time before the upstream send, for lone streams.

    perf/pre_send.py URL KEY MODEL [--streams 200] [--pause-ms 20] [--warmup 10]

On one keep-alive connection, one 8-token stream at a time, with --pause-ms after each stream
ends. Every response's x-gateway-overhead-ms (SPEC.md: from the request's arrival to the upstream
send, less queue and earlier attempts) is read; the first --warmup are dropped. Prints one JSON
line: {"pause_ms", "n", "p50_us", "p90_us", "min_us"}. Unlike end-to-end TTFT, this leaves out the
network, the client and the worker's step, so a few µs of the gateway's own work show.
"""
import argparse
import http.client
import json
import sys
import time
from urllib.parse import urlsplit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("model")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--pause-ms", type=float, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    url = urlsplit(args.url)
    body = json.dumps({"model": args.model, "stream": True, "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi"}]})
    headers = {"authorization": f"Bearer {args.key}", "content-type": "application/json"}
    connection = http.client.HTTPConnection(url.hostname, url.port)
    values = []
    for i in range(args.warmup + args.streams):
        connection.request("POST", url.path, body, headers)
        response = connection.getresponse()
        overhead = response.getheader("x-gateway-overhead-ms")
        response.read()
        if response.status != 200 or overhead is None:
            sys.exit(f"pre_send.py: status {response.status}, x-gateway-overhead-ms {overhead!r}")
        if i >= args.warmup:
            values.append(float(overhead) * 1000)
        time.sleep(args.pause_ms / 1000)
    values.sort()
    print(json.dumps({"pause_ms": args.pause_ms, "n": len(values), "p50_us": round(values[len(values) // 2], 1),
                      "p90_us": round(values[int(len(values) * 0.9)], 1), "min_us": round(values[0], 1)}))


if __name__ == "__main__":
    main()
