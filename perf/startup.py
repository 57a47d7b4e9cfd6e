#!/usr/bin/env python3
"""Footprint of the AOT binary: size, time from exec to the first 200 from /ready, idle RSS.

Usage: perf/startup.py [COMMAND] [RUNS]   (default artifacts/aot/aotproxy, 9 runs)
COMMAND may be "dotnet path/aotproxy.dll" to measure the JIT build of the same program.
It waits on the binary's "aotproxy ready:" line (no busy polling that would steal one of the
two cores), then confirms with GET /ready, and reports medians.
"""
import os, re, shlex, signal, statistics, subprocess, sys, tempfile, time, urllib.request

command = shlex.split(sys.argv[1] if len(sys.argv) > 1 else "artifacts/aot/aotproxy")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 9
config = """[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[workers]]
name = "w"
url = "http://127.0.0.1:1"
models = ["m"]
"""
with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
    f.write(config)

ready_ms, rss_kib = [], []
for _ in range(runs):
    start = time.perf_counter()
    proc = subprocess.Popen(command + ["serve", "--config", f.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("aotproxy ready:"):
            admin = re.search(r"admin=(\S+)", line).group(1)
            break
    with urllib.request.urlopen(admin + "ready") as response:
        assert response.status == 200
    ready_ms.append((time.perf_counter() - start) * 1000)
    time.sleep(1)
    with open(f"/proc/{proc.pid}/status") as status:
        rss_kib.append(int(next(l for l in status if l.startswith("VmRSS")).split()[1]))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
os.unlink(f.name)

size = os.path.getsize(command[-1])
print(f"{command[-1]}: {size} bytes ({size / 1048576:.1f} MiB)")
print(f"exec -> /ready 200: median {statistics.median(ready_ms):.1f} ms over {runs} runs (min {min(ready_ms):.1f}, max {max(ready_ms):.1f})")
print(f"idle RSS after 1 s: median {statistics.median(rss_kib) / 1024:.1f} MiB (min {min(rss_kib) / 1024:.1f}, max {max(rss_kib) / 1024:.1f})")
