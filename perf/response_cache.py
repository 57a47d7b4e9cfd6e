#!/usr/bin/env python3
"""Issue 21's exact response cache: hit latency against a miss and a direct request, and memory per entry.

Usage: perf/response_cache.py [--binary artifacts/aot/aotproxy] [--runs 5] [--requests 300] [--entries 10000]

Starts `aotproxy simulate` (one worker, --speed 100: a 128-token answer in a few ms) and the AOT
gateway in front of it (tenant `bench` with response_cache = true, the ledger on as shipped), on
127.0.0.1:18290-18292, and measures over one keep-alive HTTP/1.1 connection each, alternating per run:
  direct  the same deterministic chat request (temperature 0, max_tokens 128) to the simulator
  miss    through the gateway, a new prompt each time (every one a miss, then stored)
  hit     through the gateway, one prompt again and again (answered from the cache)
latency = from sending the request to the last byte of the JSON answer, per request; p50/p99 per
run, then the median of the runs. Then, on a fresh gateway: RSS before and after `--entries`
distinct misses (8 connections), against llm_gateway_response_cache_bytes (what the cache
accounts). Every process it starts is stopped by its PID.
"""
import argparse, hashlib, http.client, json, os, statistics, subprocess, sys, tempfile, threading, time

KEY = "sk-bench-cache"
MODEL = "bench-model"
DATA, WORKER, ADMIN = 18290, 18291, 18292


def body(prompt):
    return json.dumps({"model": MODEL, "temperature": 0, "max_tokens": 128,
                       "messages": [{"role": "user", "content": prompt}]}).encode()


def post(conn, payload, key=True):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + KEY
    start = time.perf_counter_ns()
    conn.request("POST", "/v1/chat/completions", payload, headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter_ns() - start) / 1000
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {data[:300]!r}")
    return elapsed, response.getheader("x-gateway-cache"), len(data)


def wait_http(port, path):
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"127.0.0.1:{port}{path} never answered")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cache_bytes():
    c = http.client.HTTPConnection("127.0.0.1", ADMIN, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith("llm_gateway_response_cache_bytes "):
            return float(line.split()[1])
    return 0.0


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def start_gateway(binary, work):
    toml = f"""
[server]
listen = "127.0.0.1:{DATA}"
admin_listen = "127.0.0.1:{ADMIN}"

[[workers]]
name = "sim"
url = "http://127.0.0.1:{WORKER}"
models = ["{MODEL}"]
max_concurrency = 64

[[tenants]]
name = "bench"
api_key_sha256 = ["{hashlib.sha256(KEY.encode()).hexdigest()}"]
response_cache = true

[response_cache]
max_bytes = 1073741824
ttl = "1h"
"""
    path = os.path.join(work, "aotproxy.toml")
    with open(path, "w") as f:
        f.write(toml)
    proc = subprocess.Popen([binary, "serve", "--config", path], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "AOTPROXY_LOG_LEVEL": "warning"})
    wait_http(ADMIN, "/ready")
    return proc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="artifacts/aot/aotproxy")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--entries", type=int, default=10000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="cache-bench-")
    sim = subprocess.Popen([args.binary, "simulate", "--listen", f"127.0.0.1:{WORKER}", "--model", MODEL, "--speed", "100", "--max-num-seqs", "256"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = None
    try:
        wait_http(WORKER, "/health")
        gateway = start_gateway(args.binary, work)
        direct = http.client.HTTPConnection("127.0.0.1", WORKER)
        through = http.client.HTTPConnection("127.0.0.1", DATA)
        hit_body = body("What is the capital of France? Answer at length.")
        post(through, hit_body)  # the one miss that stores it
        runs = {"direct": [], "miss": [], "hit": []}
        size = 0
        for run in range(args.runs):
            for name in ("direct", "miss", "hit"):
                times = []
                for i in range(args.requests):
                    if name == "direct":
                        t, _, size = post(direct, hit_body, key=False)
                    elif name == "miss":
                        t, cache, _ = post(through, body(f"Run {run} question {i}: what is the capital of France?"))
                        assert cache == "miss", cache
                    else:
                        t, cache, _ = post(through, hit_body)
                        assert cache == "hit", cache
                    times.append(t)
                runs[name].append((pct(times, 50), pct(times, 99)))
        result = {"answer_bytes": size, "runs": args.runs, "requests_per_run": args.requests}
        for name, values in runs.items():
            result[name] = {"p50_us": statistics.median(v[0] for v in values), "p99_us": statistics.median(v[1] for v in values),
                            "p50_per_run": [round(v[0]) for v in values], "p99_per_run": [round(v[1]) for v in values]}
        result["hit_vs_miss_p50"] = result["hit"]["p50_us"] / result["miss"]["p50_us"]
        result["hit_vs_direct_p50"] = result["hit"]["p50_us"] / result["direct"]["p50_us"]
        direct.close()
        through.close()

        # Memory: a fresh gateway, RSS before and after N stored misses.
        gateway.terminate()
        gateway.wait(30)
        gateway = start_gateway(args.binary, work)
        warm = http.client.HTTPConnection("127.0.0.1", DATA)
        for i in range(200):
            post(warm, body(f"warm {i}"))
        time.sleep(1)
        before_rss, before_bytes = rss_kib(gateway.pid), cache_bytes()
        counter = iter(range(args.entries))
        lock = threading.Lock()

        def fill():
            conn = http.client.HTTPConnection("127.0.0.1", DATA)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                post(conn, body(f"Entry {i}: what is the capital of France?"))

        threads = [threading.Thread(target=fill) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(2)
        after_rss, after_bytes = rss_kib(gateway.pid), cache_bytes()
        result["memory"] = {"entries": args.entries, "rss_growth_kib": after_rss - before_rss, "accounted_bytes": after_bytes - before_bytes,
                            "rss_per_entry_bytes": (after_rss - before_rss) * 1024 / args.entries,
                            "accounted_per_entry_bytes": (after_bytes - before_bytes) / args.entries}
        print(json.dumps(result, indent=2))
    finally:
        for proc in (gateway, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
