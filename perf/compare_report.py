#!/usr/bin/env python3
"""Markdown report for perf/compare.sh: python3 perf/compare_report.py perf/reports/compare-STAMP

Reads sweep.csv, open-loop.csv, sse.csv, rss-1024.csv and meta.json from the raw folder. Every
figure is the median over rounds of the same (target, point); added latency is the proxy's
median minus the direct run's median at the same point.
"""
import csv, json, os, statistics, sys
from collections import defaultdict

RAW = sys.argv[1]
NAMES = {"direct": "direct", "nginx": "nginx", "yarp": "YARP", "aot": "AotProxy (AOT)", "jit": "AotProxy (JIT)",
         "base": "AotProxy (base)", "haproxy": "haproxy", "socat": "socat"}
meta = json.load(open(os.path.join(RAW, "meta.json")))
proxies = meta["proxies"].split()
# socat forks a process per connection, and compare.sh reads the CPU and RSS of the PID it started:
# the parent's, which does none of the relaying. Its columns show "–".
FORKS = {"socat"}


def rows(name):
    path = os.path.join(RAW, name)
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []


def med(values):
    values = [float(v) for v in values if v not in ("", None)]
    return statistics.median(values) if values else None


def grouped(data, *keys):
    out = defaultdict(list)
    for r in data:
        out[tuple(r[k] for k in keys)].append(r)
    return out


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{suffix}"


def signed(v):
    return "–" if v is None else f"{v:+,.0f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def table(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


sweep = grouped(rows("sweep.csv"), "target", "connections")
points = sorted({int(c) for _, c in sweep}, key=int)
targets = ["direct"] + proxies


def m(target, conns, field):
    return med(r[field] for r in sweep.get((target, str(conns)), []))


out = []
say = out.append
say(f"# Peer comparison, {meta['date_utc']}\n")
say(f"- Command: `{meta['command']}` ({'quick mode, ' if meta['quick'] else ''}{meta['rounds']} round(s) of {meta['duration_s']} s per point, "
    f"medians over rounds; finished in {meta['elapsed_s']} s)")
say(f"- Commit: {meta['commit']}{' (with uncommitted changes)' if meta['dirty'] else ''}")
say(f"- Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory']}, {meta['os']}, kernel {meta['kernel']}; .NET SDK {meta['dotnet']}; "
    f"{meta['nginx']}; {meta['wrk']}; {meta['h2load']}")
say(f"- Placement: the machine has {meta['cores']} cores. Each proxy is pinned to core 1 (`taskset -c 1`); the backend and the load "
    "generator share core 0, so at high rates the direct run and every proxy run are partly limited by core 0, not only by the proxy.")
say(f"- Load average (1/5/15 min) at the start: {meta.get('loadavg_start', '?')}, at the end: {meta.get('loadavg_end', '?')}. "
    "The machine is shared; anything above about 2 means other work ran beside the benchmark and the figures are noisier.")
noise = [float(r["other_on_proxy_core_pct"]) for rs in sweep.values() for r in rs if r.get("other_on_proxy_core_pct") not in (None, "")]
if noise:
    say(f"- Other processes' use of the proxy core during the sweep runs: median {statistics.median(noise):.0f}%, max {max(noise):.0f}% "
        "(from /proc/stat, minus the proxy's own CPU). Above a few percent, the proxies were measured on a shared core.")
if meta.get("nice"):
    say(f"- Everything the script started ran at nice {meta['nice']}.")
if meta.get("rt"):
    say("- Everything the script started ran SCHED_FIFO at priority 1 (`--rt`): other work on the same cores waited for it.")
say("- Backends: nginx `return 200` with a 1,024-byte chat completion (with `usage`) for non-stream requests; `aotproxy simulate "
    "--decode-tps 200` (5 ms between tokens) for streams. Requests: `POST /v1/chat/completions` with a bearer key (AotProxy checks it).\n")

# The sweep's sections and what comes with it (compare.sh --sse-only runs none of them).
if points:
    say("## Throughput (wrk, closed loop, requests/s)\n")
    body = []
    for c in points:
        rps = {t: m(t, c, "rps") for t in targets}
        row = [c] + [fmt(rps[t]) for t in targets]
        if "aot" in proxies:
            row += [ratio(rps["aot"], rps.get("nginx")), ratio(rps["aot"], rps.get("yarp"))]
        if "base" in proxies:
            row += [ratio(rps["base"], rps.get("nginx")), ratio(rps.get("aot"), rps["base"])]
        body.append(row)
    header = ["connections"] + [NAMES[t] for t in targets]
    if "aot" in proxies:
        header += ["AOT / nginx", "AOT / YARP"]
    if "base" in proxies:
        header += ["base / nginx", "AOT / base"]
    say(table(header, body))
    best = {t: max((m(t, c, "rps") or 0) for c in points) for t in targets}
    say("\nBest median throughput: " + ", ".join(f"{NAMES[t]} {fmt(best[t])}" for t in targets) + ".\n")

    errors = [(r["target"], r["connections"], r["round"], r["socket_errors"], r["status_errors"]) for rs in sweep.values() for r in rs
              if r["socket_errors"] not in ("0", "") or r["status_errors"] not in ("0", "")]
    if errors:
        say("Runs with errors (target, connections, round, socket errors, non-2xx): " + "; ".join(", ".join(e) for e in errors) + "\n")

    say("## Latency under closed-loop load (wrk, µs; added = proxy − direct at the same point)\n")
    body = []
    for c in points:
        d50, d99 = m("direct", c, "p50_us"), m("direct", c, "p99_us")
        row = [c, f"{fmt(d50)} / {fmt(d99)}"]
        for t in proxies:
            p50, p99 = m(t, c, "p50_us"), m(t, c, "p99_us")
            row.append(f"{fmt(p50)} / {fmt(p99)} ({signed(p50 - d50 if p50 and d50 else None)} / {signed(p99 - d99 if p99 and d99 else None)})")
        body.append(row)
    say(table(["connections", "direct p50 / p99"] + [f"{NAMES[t]} p50 / p99 (added)" for t in proxies], body))
    say("\nClosed-loop latency at saturation is mostly queueing (Little's law), so it says more about throughput than about the "
        "proxy's own cost; the open-loop point below is the latency goal.\n")

    open_rows = grouped(rows("open-loop.csv"), "target")
    if open_rows:
        say(f"## Open-loop added latency at 50% of the slowest peer's best rate ({fmt(float(meta['open_rate']))} req/s, "
            f"h2load --rps on {meta['open_connections']} paced connection(s), {meta['open_duration_s']} s)\n")
        say("Goal: added p50 ≤ 50 µs, added p99 ≤ 250 µs.\n")
        d = {k: med(r[k] for r in open_rows.get(("direct",), [])) for k in ("p50_us", "p90_us", "p99_us")}
        body = []
        for t in targets:
            rs = open_rows.get((t,), [])
            if not rs:
                continue
            v = {k: med(r[k] for r in rs) for k in ("achieved_rps", "p50_us", "p90_us", "p99_us", "p999_us", "cpu_s", "non_200")}
            added50 = None if t == "direct" else v["p50_us"] - d["p50_us"]
            added99 = None if t == "direct" else v["p99_us"] - d["p99_us"]
            kept = v["achieved_rps"] >= 0.95 * float(meta["open_rate"])
            goal = "" if t == "direct" else ("met" if added50 <= 50 and added99 <= 250 else "**not met**")
            if not kept:
                goal += " (rate not kept: not valid)"
            body.append([NAMES[t], fmt(v["achieved_rps"]), fmt(v["p50_us"]), fmt(v["p90_us"]), fmt(v["p99_us"]), fmt(v["p999_us"]),
                         "" if added50 is None else signed(added50), "" if added99 is None else signed(added99), goal,
                         fmt(int(v["non_200"] or 0))])
        say(table(["target", "achieved req/s", "p50", "p90", "p99", "p99.9", "added p50", "added p99", "goal", "non-200"], body))
        say("\nh2load paces one HTTP/1.1 connection at the fixed rate (more connections would fire in bursts). A response slower than "
            "the interval delays the next request and that delay is not counted, so tails are understated when they are bad; "
            "perf/AotProxy.Load can replace this step (`open_loop_point` in compare.sh) once it gets a core of its own.\n")

    say("## CPU per 1,000 requests (ms of proxy CPU, utime + stime from /proc)\n")
    body = [[c] + [fmt(None if t in FORKS else m(t, c, "cpu_ms_per_1k"), 1) for t in proxies] for c in points]
    say(table(["connections"] + [NAMES[t] for t in proxies], body))
    say("\nsocat: not measured (a process per connection; the PID compare.sh started only accepts).\n" if FORKS & set(proxies) else "")

    say("## Memory (RSS)\n")
    rss = grouped(rows("rss-1024.csv"), "target")
    body = []
    for t in (t for t in proxies if t not in FORKS):
        peak_sweep = max((m(t, c, "rss_max_kib") or 0) for c in points) / 1024
        r = (rss.get((t,)) or [{}])[0]
        idle = float(r["idle_rss_kib"]) / 1024 if r.get("idle_rss_kib") else None
        peak = float(r["max_rss_kib_1024"]) / 1024 if r.get("max_rss_kib_1024") else None
        hwm = float(r["vmhwm_kib"]) / 1024 if r.get("vmhwm_kib") else None
        errs = f"{r.get('socket_errors', '')}/{r.get('status_errors', '')}" if r else "–"
        body.append([NAMES[t], fmt(peak_sweep, 1, " MiB"), fmt(idle, 1, " MiB"), fmt(peak, 1, " MiB"), fmt(hwm, 1, " MiB"), errs])
    say(table(["proxy", "peak during sweep (≤256 conns)", "before the 1,024-connection run", f"peak with {meta['rss_connections']} connections",
               "VmHWM (lifetime)", "socket / non-2xx errors at 1,024"], body))
    say("")

    dotnet = [t for t in proxies if t in ("yarp", "aot", "jit", "base")]
    if dotnet:
        say("## Allocations and GC (.NET proxies; workstation non-concurrent GC for all three)\n")
        body = []
        for c in points:
            row = [c]
            for t in dotnet:
                row.append(f"{fmt(m(t, c, 'alloc_per_request'))} B · {fmt(m(t, c, 'gen0'))}/{fmt(m(t, c, 'gen1'))}/{fmt(m(t, c, 'gen2'))}")
            body.append(row)
        say(table(["connections"] + [f"{NAMES[t]}: B/request · gen0/1/2 per run" for t in dotnet], body))
        say("\nBytes per request = GC.GetTotalAllocatedBytes delta / requests (AotProxy: /api/status `runtime`; YARP: its /_stats). "
            "GC counts are per run.\n")

    if "aot" in proxies and "jit" in proxies:
        say("## AOT vs JIT (same code; goal: AOT within 5% of JIT)\n")
        body = []
        for c in points:
            a, j = m("aot", c, "rps"), m("jit", c, "rps")
            ca, cj = m("aot", c, "cpu_ms_per_1k"), m("jit", c, "cpu_ms_per_1k")
            delta = (a / j - 1) * 100 if a and j else None
            body.append([c, fmt(a), fmt(j), "–" if delta is None else f"{delta:+.1f}%", fmt(ca, 1), fmt(cj, 1),
                         "" if delta is None else ("met" if delta >= -5 else "**not met**: AOT more than 5% slower")])
        say(table(["connections", "AOT req/s", "JIT req/s", "AOT vs JIT", "AOT CPU ms/1k", "JIT CPU ms/1k", ""], body))
        say("")

def sse_sequential(sse):
    say(f"## Streaming: time to first token (perf/sse_probe.py, {meta['sse_requests']} streams of 8 tokens per round, one connection, µs)\n")
    d = {k: med(r[k] for r in sse.get(("direct",), [])) for k in ("headers_p50_us", "ttft_p50_us", "ttft_p99_us")}
    body = []
    for t in targets:
        rs = sse.get((t,), [])
        if not rs:
            continue
        v = {k: med(r[k] for r in rs) for k in ("headers_p50_us", "headers_p99_us", "ttft_p50_us", "ttft_p99_us", "itl_p50_us", "itl_p99_us")}
        add = lambda k: "" if t == "direct" or v[k] is None or d[k] is None else signed(v[k] - d[k])
        bad = sum(int(r["failures"]) + int(r["incomplete"]) for r in rs)
        body.append([NAMES[t], fmt(v["headers_p50_us"]), add("headers_p50_us"), fmt(v["ttft_p50_us"]), fmt(v["ttft_p99_us"]),
                     add("ttft_p50_us"), add("ttft_p99_us"), fmt(v["itl_p50_us"]), fmt(v["itl_p99_us"]), bad])
    say(table(["target", "headers p50", "added", "TTFT p50", "TTFT p99", "added p50", "added p99", "ITL p50", "ITL p99", "failed"], body))


def per_round(sse, t, field="added_ttft_p50_us"):
    """{round: value} of one target's field, rounds where it has one."""
    return {r["round"]: float(r[field]) for r in sse.get((t,), []) if r.get(field) not in ("", None)}


def ratios(sse, t, peer):
    """The median of t's paired added p50 over its peer's, and the per-round ratios."""
    a, b = per_round(sse, t), per_round(sse, peer)
    each = [a[k] / b[k] for k in sorted(a, key=int) if k in b and b[k] > 0]
    whole = ratio(med(a.values()), med(b.values())) if a and b and med(b.values()) > 0 else "–"
    return whole + (f" ({', '.join(f'{x:.2f}' for x in each)})" if each else "")


def sse_interleaved(sse):
    say(f"## Streaming: time to first token, interleaved (perf/sse_probe.py --also, {meta['sse_requests']} rotations per round of one stream "
        f"of {meta.get('sse_max_tokens', 8)} tokens to each target, one every {meta.get('sse_interval_ms', 50):g} ms, µs)\n")
    peers = [p for p in ("nginx", "socat") if p in proxies]
    body = []
    for t in targets:
        rs = sse.get((t,), [])
        if not rs:
            continue
        v = {k: med(r[k] for r in rs) for k in ("headers_p50_us", "ttft_p50_us", "ttft_p99_us", "itl_p50_us", "added_ttft_p50_us",
                                                 "added_ttft_p99_us", "added_ttft_ci95_lo_us", "added_ttft_ci95_hi_us", "added_headers_p50_us")}
        rounds = per_round(sse, t)
        bad = sum(int(r["failures"]) + int(r["incomplete"]) for r in rs)
        direct = t == "direct"
        body.append([NAMES[t], fmt(v["headers_p50_us"]), fmt(v["ttft_p50_us"]), fmt(v["ttft_p99_us"]), fmt(v["itl_p50_us"]),
                     "" if direct else signed(v["added_headers_p50_us"]), "" if direct else f"**{signed(v['added_ttft_p50_us'])}**",
                     "" if direct else signed(v["added_ttft_p99_us"]),
                     "" if direct or not rounds else f"{signed(min(rounds.values()))} .. {signed(max(rounds.values()))}",
                     "" if direct else f"{signed(v['added_ttft_ci95_lo_us'])} .. {signed(v['added_ttft_ci95_hi_us'])}"]
                    + ["" if direct or t == p else ratios(sse, t, p) for p in peers] + [bad])
    say(table(["target", "headers p50", "TTFT p50", "TTFT p99", "ITL p50", "added headers p50", "added TTFT p50", "added TTFT p99",
               "rounds' added p50", "a round's 95% interval"] + [f"/ {NAMES[p]} (per round)" for p in peers] + ["failed"], body))
    say("\nAdded = per rotation, the target's stream minus direct's in the same rotation (paired); its p50 per round, the median of "
        "rounds shown. A round's 95% interval: bootstrap of that round's median, the median of rounds' bounds. Ratios: of the "
        "rounds' medians, then per round.")


sse = grouped(rows("sse.csv"), "target")
if sse:
    interleaved = any(r.get("added_ttft_p50_us") not in ("", None) for rs in sse.values() for r in rs)
    (sse_interleaved if interleaved else sse_sequential)(sse)
    say("\nThe simulator steps its engine every 5 ms (200 tokens/s), so a request waits 0-5 ms for the next step: TTFT carries that "
        "jitter on every target, and its p99 is mostly the step. Headers come back before the first step (the simulator sends them at "
        "once, as vLLM's uvicorn does), so 'headers' is the proxy's round trip on the streaming path without the engine's jitter.\n")

overhead = grouped(rows("overhead.csv"), "load_pct", "target")
if overhead:
    say(f"## Added time per request, interleaved pairs (perf/pair_probe.py, {meta['overhead_pairs']} pairs per point, µs)\n")
    say(f"Each pair sends the same request directly to the backend and through the proxy, one after the other, the order "
        f"alternating; background load through the proxy at a share of AotProxy's best sweep throughput "
        f"({fmt(float(meta['overhead_capacity']))} req/s). Added = per pair, proxy minus direct; medians over rounds.\n")
    body = []
    for pct in sorted({int(p) for p, _ in overhead}):
        for t in proxies:
            rs = overhead.get((str(pct), t), [])
            if not rs:
                continue
            v = {k: med(r[k] for r in rs) for k in ("load_rps", "direct_p50_us", "direct_p99_us", "proxy_p50_us", "proxy_p99_us",
                                                     "added_p50_us", "added_p90_us", "added_p99_us")}
            failed = sum(int(r["failures"]) for r in rs)
            body.append([f"{pct}%", fmt(v["load_rps"]), NAMES[t], f"{fmt(v['direct_p50_us'])} / {fmt(v['direct_p99_us'])}",
                         f"{fmt(v['proxy_p50_us'])} / {fmt(v['proxy_p99_us'])}", signed(v["added_p50_us"]), signed(v["added_p90_us"]),
                         signed(v["added_p99_us"]), failed])
    say(table(["load", "req/s", "proxy", "direct p50 / p99", "proxied p50 / p99", "added p50", "added p90", "added p99", "failed"], body))
    say("")

print("\n".join(out))
