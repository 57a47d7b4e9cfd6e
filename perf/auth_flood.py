#!/usr/bin/env python3
"""Hostile-token flood for perf/auth_flood.sh: N chat requests whose bearer token is JWT-shaped
but carries text that is not UTF-8 (issue 14, item 1), over C keep-alive connections.

Usage: perf/auth_flood.py HOST PORT N [--connections C] [--kind kid-surrogate|kid-bytes]

kid-surrogate: the header's kid is an escaped lone surrogate ("\\ud800"); kid-bytes: it holds the
bytes FF FE. Prints one JSON object: requests, seconds, and the count of each status.
"""
import argparse, base64, collections, http.client, json, threading, time


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--kind", choices=["kid-surrogate", "kid-bytes"], default="kid-surrogate")
    args = ap.parse_args()
    header = b'{"alg":"HS256","kid":"\\ud800"}' if args.kind == "kid-surrogate" else b'{"alg":"HS256","kid":"\xff\xfe"}'
    token = b64(header) + "." + b64(b'{"tenant":"acme","exp":9999999999}') + "." + b64(b"x" * 32)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    counts, lock = collections.Counter(), threading.Lock()

    def run(k):
        conn, local = http.client.HTTPConnection(args.host, args.port), collections.Counter()
        for _ in range(k):
            conn.request("POST", "/v1/chat/completions", body, headers)
            response = conn.getresponse()
            response.read()
            local[response.status] += 1
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(args.host, args.port)
        with lock:
            counts.update(local)

    share = args.n // args.connections
    threads = [threading.Thread(target=run, args=(share,)) for _ in range(args.connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"requests": share * args.connections, "seconds": round(time.monotonic() - started, 2),
                      "statuses": {str(k): v for k, v in sorted(counts.items())}}))


if __name__ == "__main__":
    main()
