#!/usr/bin/env python3
"""Summary for perf/admission.sh: python3 perf/admission_report.py DIR [DIR...] [--experiments "a b"]

Reads, for every experiment that ran:
  DIR/<experiment>/requests.csv                 one line per request (aotproxy-load --requests)
  DIR/<experiment>/admission-<profile>.json     the aotproxy-load report (its start time)
  DIR/<experiment>/queues.jsonl                 "EPOCH {GET /api/queues}", every 0.5 s
and writes Markdown on stdout: the figures of each experiment and its goals. With several DIRs
(repeated full runs), each goal's figure is the median over the runs, with every run's beside it.

Times are seconds from the schedule's start, scaled back by --duration-scale to the profile's own
timeline, whose phases (free's stop, p4's start) are read from perf/profiles/admission-*.toml.
"""
import argparse
import csv
import datetime
import json
import os
import re
import statistics
import tomllib

ALL_EXPERIMENTS = ["fairness", "isolation", "isolation-priority", "shapes"]
INPUT_WEIGHT, OUTPUT_WEIGHT = 1.0, 2.0  # [scheduler] input_weight, output_weight (the defaults)
FAIR_WEIGHTS = {"enterprise": 70, "premium": 20, "free": 10}  # perf/admission.sh's tenant weights
WINDOW = 30.0
SETTLE = 10.0  # the fairness run's first seconds, before every tenant is backlogged
WARM = 5.0  # the first seconds of a phase: queues filling, not the steady state
PROFILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")


def seconds(text):
    """A profile duration ("90s", "1m30s", "250ms") in seconds."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def phases(profile, mix):
    """(the named entry's start, its stop, the whole schedule's length) of perf/profiles/PROFILE.toml."""
    with open(os.path.join(PROFILES, profile + ".toml"), "rb") as f:
        config = tomllib.load(f)
    entry = next(m for m in config["mix"] if m["name"] == mix)
    end = sum(seconds(step["duration"]) for step in config["load"])
    return seconds(entry.get("start", "0s")), seconds(entry["stop"]) if "stop" in entry else end, end


_, FAIR_STOP, FAIR_END = phases("admission-fairness", "free")
P4_START, _, ISO_END = phases("admission-isolation", "p4")
_, _, SHAPES_END = phases("admission-shapes", "long")
SHAPES_BAND = (0.90, 1.11)  # issue 14: short:long weighted service

parser = argparse.ArgumentParser()
parser.add_argument("dirs", nargs="+", metavar="dir")
parser.add_argument("--experiments", default=" ".join(ALL_EXPERIMENTS))
parser.add_argument("--duration-scale", type=float, default=1.0)
parser.add_argument("--command", default="perf/admission.sh")
parser.add_argument("--seconds", type=int, default=None)
args = parser.parse_args()
scale = args.duration_scale


def read_requests(directory):
    rows = []
    with open(os.path.join(directory, "requests.csv")) as f:
        for r in csv.DictReader(f):
            rows.append({
                "mix": r["mix"],
                "sent": float(r["sent_s"]) / scale,
                "ttft": float(r["ttft_s"]) if r["ttft_s"] else None,
                "end": float(r["end_s"]) / scale,
                "latency": float(r["end_s"]) - float(r["sent_s"]),
                "status": int(r["status"]),
                "error": r["error"],
                "cost": INPUT_WEIGHT * int(r["prompt_tokens"]) + OUTPUT_WEIGHT * int(r["completion_tokens"]),
            })
    return rows


def read_samples(directory):
    """(t, capacity, in_use, waiting) per sample, t in profile seconds from the schedule's start."""
    report = next(f for f in os.listdir(directory) if f.startswith("admission-") and f.endswith(".json"))
    started = datetime.datetime.fromisoformat(json.load(open(os.path.join(directory, report)))["started_at"]).timestamp()
    samples = []
    for line in open(os.path.join(directory, "queues.jsonl")):
        epoch, _, body = line.partition(" ")
        try:
            models = json.loads(body).get("models", [])
        except json.JSONDecodeError:
            continue
        if models:
            m = models[0]
            samples.append(((float(epoch) - started) / scale, m["capacity"], m["in_use"], m["waiting"]))
    return samples


def frange(start, last):
    """start, start + WINDOW, ... up to last."""
    t = start
    while t <= last + 1e-9:
        yield t
        t += WINDOW


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def jain(xs):
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if xs and any(xs) else float("nan")


def utilization(samples, start, end):
    """Mean and lowest in_use/capacity over the samples in [start, end) where someone waits."""
    busy = [u / c for t, c, u, w in samples if start <= t < end and c > 0 and w > 0]
    return (statistics.mean(busy), min(busy), len(busy)) if busy else (float("nan"), float("nan"), 0)


def fairness(directory):
    rows = read_requests(directory)
    samples = read_samples(directory)
    ok = [r for r in rows if not r["error"]]
    # free is idle once its last request ended (served or refused): from then on the others share.
    idle = max(r["end"] for r in rows if r["mix"] == "free")
    # The first SETTLE seconds are not a goal window: until the queues form, the fast path admits
    # whoever comes first, and those requests complete in the first second or two of the window.
    spans = [(0, SETTLE, 3, False)]
    spans += [(t, t + WINDOW, 3, True) for t in frange(SETTLE, FAIR_STOP - WINDOW)]
    spans += [(t, t + WINDOW, 2, True) for t in frange(idle, FAIR_END - WINDOW)]
    windows = []
    for start, end, tenants, goal in spans:
        names = list(FAIR_WEIGHTS)[:tenants]
        served = {n: sum(r["cost"] for r in ok if r["mix"] == n and start <= r["end"] < end) for n in names}
        total = sum(served.values())
        weights = sum(FAIR_WEIGHTS[n] for n in names)
        shares = {n: served[n] / total if total else 0 for n in names}
        targets = {n: FAIR_WEIGHTS[n] / weights for n in names}
        errors = {n: shares[n] / targets[n] - 1 for n in names}
        util = utilization(samples, start, end)
        windows.append({
            "window": f"{start:.1f}-{end:.1f} s", "tenants": tenants, "shares": shares, "targets": targets,
            "errors": errors, "jain": jain([shares[n] / targets[n] for n in names]),
            "tokens_per_s": total / ((end - start) * scale), "util": util, "goal": goal,
        })
    # "At once": the 5 s right after free went idle against the 5 s before it stopped sending.
    def rate(names, start, end):
        return sum(r["cost"] for r in ok if r["mix"] in names and start <= r["end"] < end) / ((end - start) * scale)
    before = rate(("enterprise", "premium", "free"), FAIR_STOP - 5, FAIR_STOP)
    after = rate(("enterprise", "premium"), idle, idle + 5)
    split = rate(("enterprise",), idle, idle + 5) / max(after, 1e-9)
    refused = sum(1 for r in rows if r["status"] == 503)
    return {
        "windows": windows, "idle": idle, "before": before, "after": after, "split_after": split,
        "requests": len(rows), "ok": len(ok), "refused": refused,
        "worst_error": max(abs(e) for w in windows if w["goal"] for e in w["errors"].values()),
        "worst_jain": min(w["jain"] for w in windows if w["goal"]),
        "worst_util": min(w["util"][0] for w in windows if w["goal"] and w["util"][2] > 0),
    }


def isolation(directory):
    rows = read_requests(directory)
    samples = read_samples(directory)
    ok = [r for r in rows if not r["error"]]
    p0_unloaded = [r for r in ok if r["mix"] == "p0" and WARM <= r["sent"] < P4_START]
    p0_loaded = [r for r in ok if r["mix"] == "p0" and P4_START + WARM <= r["sent"] < ISO_END]
    p4 = [r for r in rows if r["mix"] == "p4"]
    p4_ok = [r for r in p4 if not r["error"]]
    service = statistics.mean(r["latency"] for r in p0_unloaded) if p0_unloaded else float("nan")
    unloaded_p99 = percentile([r["ttft"] for r in p0_unloaded], 99)
    loaded_p99 = percentile([r["ttft"] for r in p0_loaded], 99)
    p4_max_wait = max((r["ttft"] for r in p4_ok), default=float("nan"))
    util = utilization(samples, P4_START + WARM, ISO_END)
    p0_errors = sum(1 for r in rows if r["mix"] == "p0" and r["error"])
    return {
        "p0_unloaded": (len(p0_unloaded), percentile([r["ttft"] for r in p0_unloaded], 50), unloaded_p99),
        "p0_loaded": (len(p0_loaded), percentile([r["ttft"] for r in p0_loaded], 50), loaded_p99),
        "p0_ratio": loaded_p99 / unloaded_p99, "p0_errors": p0_errors,
        "service": service, "p4_sent": len(p4), "p4_ok": len(p4_ok),
        "p4_rate": len(p4_ok) / ((ISO_END - P4_START) * scale), "p4_refused": sum(1 for r in p4 if r["status"] == 503),
        "p4_max_wait": p4_max_wait, "p4_wait_ratio": p4_max_wait / service,
        "p4_ttft_p50": percentile([r["ttft"] for r in p4_ok], 50), "util": util,
    }


def final_counters(directory):
    """The tenants' fair-share counters (virtual_tokens) in the last /api/queues sample that has them."""
    last = {}
    for line in open(os.path.join(directory, "queues.jsonl")):
        _, _, body = line.partition(" ")
        try:
            models = json.loads(body).get("models", [])
        except json.JSONDecodeError:
            continue
        if models and models[0].get("tenants"):
            last = {t["name"]: t["virtual_tokens"] for t in models[0]["tenants"]}
    return last


def shapes(directory):
    rows = read_requests(directory)
    samples = read_samples(directory)
    ok = [r for r in rows if not r["error"]]
    windows = []
    for start, end, goal in [(0, SETTLE, False)] + [(t, t + WINDOW, True) for t in frange(SETTLE, SHAPES_END - WINDOW)]:
        served = {n: sum(r["cost"] for r in ok if r["mix"] == n and start <= r["end"] < end) for n in ("short", "long")}
        count = {n: sum(1 for r in ok if r["mix"] == n and start <= r["end"] < end) for n in ("short", "long")}
        windows.append({
            "window": f"{start:.1f}-{end:.1f} s", "goal": goal, "served": served, "count": count,
            "ratio": served["short"] / served["long"] if served["long"] else float("nan"),
            "tokens_per_s": sum(served.values()) / ((end - start) * scale), "util": utilization(samples, start, end),
        })
    # The windows' span: what completes after the schedule's end is the queues draining, no contest.
    judged = [r for r in ok if SETTLE <= r["end"] < SHAPES_END]
    overall = sum(r["cost"] for r in judged if r["mix"] == "short") / max(sum(r["cost"] for r in judged if r["mix"] == "long"), 1e-9)
    # The books: every request has ended by the last sample, so each counter should be its
    # tenant's whole usage at the weights (refused requests cost nothing).
    counters = final_counters(directory)
    usage = {n: sum(r["cost"] for r in ok if r["mix"] == n) for n in ("short", "long")}
    books = {n: counters.get("shape-" + n, float("nan")) / usage[n] if usage[n] else float("nan") for n in usage}
    ratios = [w["ratio"] for w in windows if w["goal"]]
    return {
        "windows": windows, "overall": overall, "requests": len(rows), "ok": len(ok),
        "refused": sum(1 for r in rows if r["status"] == 503), "books": books,
        "counter_ratio": counters.get("shape-short", float("nan")) / counters.get("shape-long", float("nan")) if counters.get("shape-long") else float("nan"),
        "worst": max(ratios, key=lambda x: max(x / SHAPES_BAND[1], SHAPES_BAND[0] / x)), "lowest": min(ratios), "highest": max(ratios),
    }


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def pct(x):
    return f"{x * 100:.1f}%"


def median_line(values, fmt):
    return f"{fmt(statistics.median(values))} (runs: {', '.join(fmt(v) for v in values)})" if len(values) > 1 else fmt(values[0])


experiments = args.experiments.split()
out = ["# Admission under saturation (perf/admission.sh)", "", f"Command: `{args.command}`" + (f", {args.seconds} s" if args.seconds else "") + f"; {len(args.dirs)} run(s).", ""]

if "fairness" in experiments:
    runs = [fairness(os.path.join(d, "fairness")) for d in args.dirs]
    out += ["## Fairness: three backlogged tenants, weights 70/20/10 (fairshare)", ""]
    for i, run in enumerate(runs):
        out += [f"Run {i + 1}: {run['requests']} requests, {run['ok']} served, {run['refused']} refused with 503 (the overload). free idle from {run['idle']:.1f} s.", "",
                "| window | enterprise | premium | free | Jain | weighted tok/s | slot utilization while waiting (mean / min) |", "|---|---|---|---|---|---|---|"]
        for w in run["windows"]:
            cells = [f"{pct(w['shares'][n])} (target {pct(w['targets'][n])}, {w['errors'][n] * 100:+.1f}%)" if n in w["shares"] else "idle" for n in FAIR_WEIGHTS]
            u = w["util"]
            label = w["window"] if w["goal"] else f"{w['window']} (settling; not a goal window)"
            out.append(f"| {label} | " + " | ".join(cells) + f" | {w['jain']:.4f} | {w['tokens_per_s']:.0f} | {pct(u[0])} / {pct(u[1])} ({u[2]} samples) |")
        out += ["", f"Free stopped: the fleet served {run['before']:.0f} weighted tok/s in the 5 s before; enterprise and premium served {run['after']:.0f} in the 5 s after free went idle, enterprise {pct(run['split_after'])} of it (target {pct(70 / 90)}).", ""]
    worst_error = [r["worst_error"] for r in runs]
    worst_jain = [r["worst_jain"] for r in runs]
    worst_util = [r["worst_util"] for r in runs]
    takeover = [r["after"] / r["before"] for r in runs]
    out += ["| goal | result | verdict |", "|---|---|---|",
            f"| every 30 s window within ±5% of the target shares | worst {median_line(worst_error, pct)} | {'met' if statistics.median(worst_error) <= 0.05 else 'missed'} |",
            f"| Jain index ≥ 0.99 | worst {median_line(worst_jain, lambda x: f'{x:.4f}')} | {'met' if statistics.median(worst_jain) >= 0.99 else 'missed'} |",
            f"| utilization ≥ 95% while anyone waits | worst window mean {median_line(worst_util, pct)} | {'met' if statistics.median(worst_util) >= 0.95 else 'missed'} |",
            f"| free's share taken at once | the 5 s after: {median_line(takeover, pct)} of the fleet's rate before | {'met' if statistics.median(takeover) >= 0.95 else 'missed'} |", ""]

for name in ("isolation", "isolation-priority"):
    if name not in experiments:
        continue
    runs = [isolation(os.path.join(d, name)) for d in args.dirs]
    policy = "bucket: 12 of 32 slots guaranteed to P0" if name == "isolation" else "priority: no reserved slots"
    out += [f"## Priority isolation ({policy})", "",
            "| run | P0 TTFT unloaded p50 / p99 (n) | P0 TTFT under 2x overload p50 / p99 (n) | p99 ratio | P0 errors | P4 served/s (of sent, refused) | P4 TTFT p50 / max | mean service | P4 max / service | slot utilization under overload |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs):
        u = r["p0_unloaded"]
        lo = r["p0_loaded"]
        out.append(f"| {i + 1} | {ms(u[1])} / {ms(u[2])} ({u[0]}) | {ms(lo[1])} / {ms(lo[2])} ({lo[0]}) | {r['p0_ratio']:.2f}x | {r['p0_errors']} | {r['p4_rate']:.1f} ({r['p4_ok']} of {r['p4_sent']}, {r['p4_refused']} refused) | {ms(r['p4_ttft_p50'])} / {ms(r['p4_max_wait'])} | {ms(r['service'])} | {r['p4_wait_ratio']:.1f}x | {pct(r['util'][0])} |")
    ratio = [r["p0_ratio"] for r in runs]
    wait = [r["p4_wait_ratio"] for r in runs]
    if name == "isolation-priority":
        out += ["", f"For comparison, not a goal: without reserved slots P0 waits for the next slot a P4 request frees, P0 TTFT p99 {median_line(ratio, lambda x: f'{x:.2f}x')} its unloaded value.", ""]
        continue
    out += ["", "| goal | result | verdict |", "|---|---|---|",
            f"| P0 TTFT p99 ≤ 1.5x unloaded | {median_line(ratio, lambda x: f'{x:.2f}x')} | {'met' if statistics.median(ratio) <= 1.5 else 'missed'} |",
            f"| P4 served, max wait ≤ 10x mean service time | {median_line(wait, lambda x: f'{x:.1f}x')} (P4 TTFT, which includes its queue wait) | {'met' if statistics.median(wait) <= 10 and all(r['p4_ok'] > 0 for r in runs) else 'missed'} |", ""]

if "shapes" in experiments:
    runs = [shapes(os.path.join(d, "shapes")) for d in args.dirs]
    out += ["## Shapes: two backlogged tenants of equal weight, short and long requests (fairshare)", ""]
    for i, run in enumerate(runs):
        out += [f"Run {i + 1}: {run['requests']} requests, {run['ok']} served, {run['refused']} refused with 503 (the overload).", "",
                "| window | short served (weighted tokens, requests) | long served | short:long | weighted tok/s | slot utilization while waiting (mean / min) |", "|---|---|---|---|---|---|"]
        for w in run["windows"]:
            u = w["util"]
            label = w["window"] if w["goal"] else f"{w['window']} (settling; not a goal window)"
            out.append(f"| {label} | {w['served']['short']:.0f} ({w['count']['short']}) | {w['served']['long']:.0f} ({w['count']['long']}) | {w['ratio']:.3f} | {w['tokens_per_s']:.0f} | {pct(u[0])} / {pct(u[1])} ({u[2]} samples) |")
        out += ["", f"From 10 s to the schedule's end: short:long {run['overall']:.3f}. The counters at the end: short:long {run['counter_ratio']:.3f}; each over its tenant's usage at the weights: short {run['books']['short']:.3f}, long {run['books']['long']:.3f}.", ""]
    worst = [r["worst"] for r in runs]
    overall = [r["overall"] for r in runs]
    books = [max(abs(b - 1) for b in r["books"].values()) for r in runs]
    inside = lambda x: SHAPES_BAND[0] <= x <= SHAPES_BAND[1]
    out += ["| goal | result | verdict |", "|---|---|---|",
            f"| short:long weighted service within {SHAPES_BAND[0]:.2f}-{SHAPES_BAND[1]:.2f} in every 30 s window after the first 10 s | worst window {median_line(worst, lambda x: f'{x:.3f}')} | {'met' if inside(statistics.median(worst)) else 'missed'} |",
            f"| the same from 10 s to the schedule's end | {median_line(overall, lambda x: f'{x:.3f}')} | {'met' if inside(statistics.median(overall)) else 'missed'} |",
            f"| counters = usage at the weights | largest difference {median_line(books, pct)} | {'met' if statistics.median(books) <= 0.02 else 'missed'} |", ""]

print("\n".join(out))
