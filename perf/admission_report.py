#!/usr/bin/env python3
"""Summary for perf/admission.sh: python3 perf/admission_report.py DIR [DIR...] [--experiments "a b"]

Reads, for every experiment that ran:
  DIR/<experiment>/requests.csv                 one line per request (aotproxy-load --requests)
  DIR/<experiment>/admission-<profile>.json     the aotproxy-load report (its start time)
  DIR/<experiment>/queues.jsonl                 "EPOCH {GET /api/queues}", every 0.5 s
  DIR/<experiment>/gateway.toml                 the gateway's config: tenants' classes and weights
  DIR/<experiment>/gateway-metrics.txt          the gateway's /metrics at the end
  DIR/<experiment>/faults.log                   "EPOCH PHASE" when perf/admission.sh flipped faults
  DIR/<experiment>/aotproxy-usage.db            the gateway's ledger (degradation: sheds per class and phase)
  DIR/<experiment>/absent.txt                   the binary rejected the config: feature absent
and writes Markdown on stdout: the figures of each experiment and its goals. With several DIRs
(repeated full runs), each goal's figure is the median over the runs, with every run's beside it.

Every experiment also gets the fairness numbers (tenant_fairness): each tenant's share of the
served weighted tokens (prompt + 2 x completion, from the usage the worker reported) against its
target share, the share error (share / target - 1), Jain's index over share / target, and TTFT p50
and p99 per tenant, over the experiment's contention span. The target is the max-min fair split of
what was served: classes by priority (a higher class takes all it asked for first), tenants of one
priority by weight, and no tenant more than it asked for (its requests sent in the span x the
weighted tokens its served requests took on average).

Times are seconds from the schedule's start, scaled back by --duration-scale to the profile's own
timeline, whose phases (free's stop, p4's start) are read from perf/profiles/admission-*.toml.
"""
import argparse
import csv
import datetime
import json
import os
import re
import sqlite3
import statistics
import tomllib

ALL_EXPERIMENTS = ["fairness", "isolation", "isolation-priority", "shapes", "three-shapes", "late-arrival",
                   "degradation", "degradation-off", "degradation-lone", "degradation-full", "degradation-full-off",
                   "degradation-full-lone", "preemption", "preemption-off",
                   "preemption-cluster", "preemption-cluster-off"]
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
_, _, THREE_END = phases("admission-three-shapes", "long")
LATE_JOIN, _, LATE_END = phases("admission-late-arrival", "late")
_, _, DEGRADE_END = phases("admission-degradation", "free")
_, _, PREEMPT_END = phases("admission-preemption", "free")
SHAPES_BAND = (0.90, 1.11)  # issue 14: short:long weighted service
SHARE_TOLERANCE = 0.05  # issue 20: three-shapes and late-arrival, relative to the target share
LATE_WITHIN = 10.0  # issue 20: the late tenant has its share within 10 s (real seconds)
DEGRADE_TOLERANCE = 2.0  # enterprise's ttft_tolerance in perf/admission.sh's degradation config
PREEMPT_GOAL = 0.5  # enterprise TTFT p90 with preemption / without

scale = 1.0  # --duration-scale, set by main


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
                "first": (float(r["sent_s"]) + float(r["ttft_s"])) / scale if r["ttft_s"] else None,
                "cost": INPUT_WEIGHT * int(r["prompt_tokens"]) + OUTPUT_WEIGHT * int(r["completion_tokens"]),
            })
    return rows


def schedule_start(directory):
    """The epoch second the runner's schedule started (its report's started_at)."""
    report = next(f for f in os.listdir(directory) if f.startswith("admission-") and f.endswith(".json"))
    with open(os.path.join(directory, report)) as f:
        return datetime.datetime.fromisoformat(json.load(f)["started_at"]).timestamp()


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def read_samples(directory):
    """(t, capacity, in_use, waiting) per sample, t in profile seconds from the schedule's start."""
    started = schedule_start(directory)
    samples = []
    for line in lines(os.path.join(directory, "queues.jsonl")):
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
        window = share_window(ok, {n: FAIR_WEIGHTS[n] for n in list(FAIR_WEIGHTS)[:tenants]}, start, end)
        window.update({"window": f"{start:.1f}-{end:.1f} s", "tenants": tenants, "goal": goal,
                       "tokens_per_s": window["total"] / ((end - start) * scale), "util": utilization(samples, start, end)})
        windows.append(window)
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
    for line in lines(os.path.join(directory, "queues.jsonl")):
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


def profile_name(experiment):
    """perf/profiles/<this>.toml: a peer run (-priority, -off) sends its experiment's traffic."""
    return "admission-" + experiment.removesuffix("-priority").removesuffix("-off").removesuffix("-cluster")


def tenant_table(directory, experiment):
    """Each [[mix]] entry's (class priority, weight among its priority's tenants) from the run's gateway.toml."""
    with open(os.path.join(PROFILES, profile_name(experiment) + ".toml"), "rb") as f:
        mixes = tomllib.load(f)["mix"]
    with open(os.path.join(directory, "gateway.toml"), "rb") as f:
        config = tomllib.load(f)
    classes = {c["name"]: c for c in config.get("classes", [])}
    tenants = {t["name"]: t for t in config.get("tenants", [])}
    table = {}
    for m in mixes:
        tenant = tenants[m["tenant"]]
        cls = classes[tenant["class"]]
        # The hierarchy: a class's weight, split among its tenants by theirs.
        members = sum(t.get("weight", 1) for t in tenants.values() if t["class"] == tenant["class"])
        table[m["name"]] = (cls.get("priority", 0), cls.get("weight", 1) * tenant.get("weight", 1) / members)
    return table


def water_fill(total, demand, table):
    """Target shares of `total`: priorities in order, each taking what its tenants asked for, split by
    weight where it does not suffice (max-min fair); normalised to sum to 1."""
    left = total
    target = {n: 0.0 for n in table}
    for priority in sorted({p for p, _ in table.values()}):
        active = [n for n in table if table[n][0] == priority and demand[n] > 0]
        while active and left > 0:
            weights = sum(table[n][1] for n in active)
            fair = {n: left * table[n][1] / weights for n in active}
            sated = [n for n in active if demand[n] <= fair[n]]
            if not sated:
                target.update(fair)
                left = 0
                break
            for n in sated:
                target[n] = demand[n]
                left -= demand[n]
                active.remove(n)
    whole = sum(target.values())
    return {n: target[n] / whole if whole else float("nan") for n in table}


def share_window(ok, weights, start, end):
    """Served weighted tokens per tenant that ended in [start, end), as shares of the whole, against
    the weights' shares (every tenant backlogged)."""
    served = {n: sum(r["cost"] for r in ok if r["mix"] == n and start <= r["end"] < end) for n in weights}
    total = sum(served.values())
    shares = {n: served[n] / total if total else 0 for n in weights}
    targets = {n: weights[n] / sum(weights.values()) for n in weights}
    errors = {n: shares[n] / targets[n] - 1 for n in weights}
    return {"shares": shares, "targets": targets, "errors": errors, "jain": jain([shares[n] / targets[n] for n in weights]),
            "total": total}


def tenant_fairness(directory, experiment, start, end):
    """The fairness numbers of one run over [start, end) (profile seconds): per tenant its served
    share, its target (water_fill), the share error, TTFT p50 / p99 of its requests sent in the span; Jain."""
    rows = read_requests(directory)
    table = tenant_table(directory, experiment)
    ok = [r for r in rows if not r["error"]]
    served = {n: sum(r["cost"] for r in ok if r["mix"] == n and start <= r["end"] < end) for n in table}
    total = sum(served.values())
    demand = {}
    for n in table:
        costs = [r["cost"] for r in ok if r["mix"] == n]
        sent = sum(1 for r in rows if r["mix"] == n and start <= r["sent"] < end)
        demand[n] = sent * statistics.mean(costs) if costs else (float("inf") if sent else 0)
    targets = water_fill(total, demand, table)
    tenants = {}
    for n in table:
        share = served[n] / total if total else float("nan")
        ttft = [r["ttft"] for r in ok if r["mix"] == n and start <= r["sent"] < end]
        tenants[n] = {"share": share, "target": targets[n], "error": share / targets[n] - 1 if targets[n] else float("nan"),
                      "p50": percentile(ttft, 50), "p99": percentile(ttft, 99), "n": len(ttft)}
    return {"span": (start, end), "tenants": tenants,
            "jain": jain([t["share"] / t["target"] for t in tenants.values() if t["target"]])}


def contention_span(experiment):
    """Where every experiment's tenants contend (profile seconds): the span its fairness numbers cover."""
    return {
        "fairness": (SETTLE, FAIR_STOP), "isolation": (P4_START + WARM, ISO_END), "isolation-priority": (P4_START + WARM, ISO_END),
        "shapes": (SETTLE, SHAPES_END), "three-shapes": (SETTLE, THREE_END),
        "late-arrival": (min(LATE_JOIN + LATE_WITHIN / scale, (LATE_JOIN + LATE_END) / 2), LATE_END),
        "degradation": (WARM, DEGRADE_END), "degradation-off": (WARM, DEGRADE_END),
        "degradation-full": (WARM, DEGRADE_END), "degradation-full-off": (WARM, DEGRADE_END),
        "preemption": (SETTLE, PREEMPT_END), "preemption-off": (SETTLE, PREEMPT_END),
        "preemption-cluster": (SETTLE, PREEMPT_END), "preemption-cluster-off": (SETTLE, PREEMPT_END),
    }[experiment]


def three_shapes(directory):
    rows = read_requests(directory)
    ok = [r for r in rows if not r["error"]]
    weights = {n: w for n, (_, w) in tenant_table(directory, "three-shapes").items()}
    windows = []
    for start, end, goal in [(0, SETTLE, False)] + [(t, t + WINDOW, True) for t in frange(SETTLE, THREE_END - WINDOW)]:
        window = share_window(ok, weights, start, end)
        window.update({"window": f"{start:.1f}-{end:.1f} s", "goal": goal, "tokens_per_s": window["total"] / ((end - start) * scale)})
        windows.append(window)
    return {"windows": windows, "requests": len(rows), "ok": len(ok), "refused": sum(1 for r in rows if r["status"] == 503),
            "worst_error": max(abs(e) for w in windows if w["goal"] for e in w["errors"].values())}


def spread(ok, names, start, end):
    """Weighted tokens per tenant served in [start, end), each request's cost spread evenly from its
    first token to its last byte: in windows of a second or two a request does not land at once."""
    served = dict.fromkeys(names, 0.0)
    for r in ok:
        first = r["first"] if r["first"] is not None and r["first"] < r["end"] else r["end"]
        if r["mix"] not in served or first >= end or r["end"] < start:
            continue
        if r["end"] == first:
            served[r["mix"]] += r["cost"] if start <= first < end else 0
        else:
            served[r["mix"]] += r["cost"] * (min(end, r["end"]) - max(start, first)) / (r["end"] - first)
    return served


def late_arrival(directory):
    rows = read_requests(directory)
    ok = [r for r in rows if not r["error"]]
    weights = {n: w for n, (_, w) in tenant_table(directory, "late-arrival").items()}
    target = weights["late"] / sum(weights.values())
    result = {"target": target, "requests": len(rows), "ok": len(ok), "refused": sum(1 for r in rows if r["status"] == 503)}
    for width in (1.0, 2.0):  # real seconds
        step = width / scale
        shares, others = [], 0.0
        t = LATE_JOIN
        while t + step <= LATE_END + 1e-9:
            served = spread(ok, weights, t, t + step)
            total = sum(served.values())
            shares.append((t, served["late"] / total if total else 0.0))
            # The tenants that were there all along, in the same windows: how much a backlogged
            # tenant's share swings anyway (the noise floor a burst must stand out of).
            others = max(others, max((served[n] / total / (weights[n] / sum(weights.values())) for n in weights if n != "late"), default=0.0) if total else 0.0)
            t += step
        result[f"windows_{width:.0f}s"] = shares
        result[f"max_{width:.0f}s"] = max(share for _, share in shares)
        result[f"others_{width:.0f}s"] = others - 1
    # The first 2 s window at its share (±5%): how long after joining it ends, in real seconds.
    reached = next(((t + 2.0 / scale - LATE_JOIN) * scale for t, share in result["windows_2s"] if abs(share / target - 1) <= SHARE_TOLERANCE), float("inf"))
    after = spread(ok, weights, LATE_JOIN + LATE_WITHIN / scale, LATE_END)
    result["reached"] = reached
    result["after_share"] = after["late"] / sum(after.values()) if sum(after.values()) else 0.0
    return result


def read_faults(directory):
    """perf/admission.sh's fault flips as {phase: profile seconds}."""
    started = schedule_start(directory)
    flips = {}
    for line in lines(os.path.join(directory, "faults.log")):
        epoch, phase, *extra = line.split()
        flips[phase] = (float(epoch) - started) / scale
        flips.update({k: float(v) / 1000 for k, v in (e.split("=") for e in extra)})
    return flips


def metric(directory, name, labels):
    """The sum of a /metrics series' samples whose labels include every one of `labels`."""
    total = 0.0
    path = os.path.join(directory, "gateway-metrics.txt")
    if not os.path.exists(path):
        return float("nan")
    for line in lines(path):
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def protection_samples(directory):
    """Each /api/queues sample as (profile seconds, its first model's classes), in order."""
    started = schedule_start(directory)
    for line in lines(os.path.join(directory, "queues.jsonl")):
        epoch, _, body = line.partition(" ")
        try:
            models = json.loads(body).get("models", [])
        except json.JSONDecodeError:
            continue
        if models:
            yield (float(epoch) - started) / scale, models[0].get("classes", [])


def shedding(directory, start, end):
    """Per class, the share of /api/queues samples in [start, end) that show protection shedding it
    (None when no sample has the protection field: the binary has no protection)."""
    seen, shed = {}, {}
    for t, classes in protection_samples(directory):
        for c in classes if start <= t < end else ():
            if "protection" in c:
                seen[c["name"]] = seen.get(c["name"], 0) + 1
                shed[c["name"]] = shed.get(c["name"], 0) + bool(c["protection"].get("shedding"))
    return {n: shed[n] / seen[n] for n in seen} if seen else None


def learned_baseline(directory, before):
    """Enterprise's TTFT baseline as the gateway had learned it (its /api/queues protection block) in the
    last sample before `before` (profile seconds); None without one."""
    learned = None
    for t, classes in protection_samples(directory):
        if t >= before:
            break
        for c in classes:
            p = c.get("protection", {})
            if c.get("name") == "enterprise" and p.get("class_baseline_ttft_seconds", p.get("baseline_ttft_seconds", 0)) > 0:
                learned = p.get("class_baseline_ttft_seconds", p.get("baseline_ttft_seconds"))
    return learned


def first_shed(directory, flip):
    """Per class, the seconds from `flip` (profile seconds) to the first /api/queues sample that shows
    protection shedding it (0.0: already shed at the flip; None: never after it)."""
    delay = {}
    for t, classes in protection_samples(directory):
        for c in classes:
            if c.get("protection", {}).get("shedding"):
                delay.setdefault(c["name"], max(0.0, t - flip))
            elif t < flip:
                delay.pop(c["name"], None)
    return {n: delay.get(n) for n in ("enterprise", "premium", "free")}


def ledger_sheds(directory, start, end):
    """Per class, the requests that arrived in [start, end) (profile seconds) and that protection shed,
    from the gateway's ledger (outcome "shed"); None without a ledger."""
    path = os.path.join(directory, "aotproxy-usage.db")
    if not os.path.exists(path):
        return None
    started = schedule_start(directory)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT class, time FROM requests WHERE outcome = 'shed'").fetchall()
    shed = {c: 0 for c in ("enterprise", "premium", "free")}
    for cls, arrived in rows:
        if start <= (arrived / 1000 - started) / scale < end:
            shed[cls] = shed.get(cls, 0) + 1
    return shed


def degradation(directory, experiment):
    rows = read_requests(directory)
    ok = [r for r in rows if not r["error"]]
    flips = read_faults(directory)
    spans = {"healthy": (WARM, flips["errors"]), "errors": (flips["errors"] + WARM, flips["slow"]), "slow": (flips["slow"] + WARM, DEGRADE_END)}
    result = {"phases": {}, "shed_total": {c: metric(directory, "llm_gateway_admissions_total", {"class": c, "outcome": "shed"}) for c in ("enterprise", "premium", "free")}}
    for phase, (start, end) in spans.items():
        per = {}
        for n in ("enterprise", "premium", "free"):
            sent = [r for r in rows if r["mix"] == n and start <= r["sent"] < end]
            ttft = [r["ttft"] for r in sent if not r["error"]]
            per[n] = {"sent": len(sent), "ok": len(ttft), "refused": sum(1 for r in sent if r["status"] == 503),
                      "failed": sum(1 for r in sent if r["error"] and r["status"] != 503),
                      "p50": percentile(ttft, 50), "p95": percentile(ttft, 95)}
        result["phases"][phase] = {"span": (start, end), "classes": per, "shedding": shedding(directory, start, end),
                                   "shed": ledger_sheds(directory, start, end)}
    result["detected"] = first_shed(directory, flips["slow"])
    result["learned"] = learned_baseline(directory, flips["slow"])
    healthy = result["phases"]["healthy"]["classes"]["enterprise"]["p95"]
    result["ratios"] = {p: v["classes"]["enterprise"]["p95"] / healthy for p, v in result["phases"].items()}
    return result


def preemption(directory):
    rows = read_requests(directory)
    judged = [r for r in rows if SETTLE <= r["sent"] < PREEMPT_END]
    enterprise = [r["ttft"] for r in judged if r["mix"] == "enterprise" and not r["error"]]
    free = [r for r in judged if r["mix"] == "free"]
    return {"p50": percentile(enterprise, 50), "p90": percentile(enterprise, 90), "n": len(enterprise),
            "enterprise_errors": sum(1 for r in judged if r["mix"] == "enterprise" and r["error"]),
            "free_ok": sum(1 for r in free if not r["error"]), "free_sent": len(free),
            "free_failed": sum(1 for r in free if r["error"] and r["status"] != 503),
            "free_refused": sum(1 for r in free if r["status"] == 503),
            "preemptions": metric(directory, "llm_gateway_preemptions_total", {"class": "free"})}


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def pct(x):
    return f"{x * 100:.1f}%"


def median_line(values, fmt):
    return f"{fmt(statistics.median(values))} (runs: {', '.join(fmt(v) for v in values)})" if len(values) > 1 else fmt(values[0])


def fairness_section(runs):
    """The fairness numbers of one experiment over its runs (tenant_fairness per run): medians, each run beside."""
    start, end = runs[0]["span"]
    out = [f"Fairness numbers, {start:.0f}-{end:.0f} s of the profile (served weighted tokens; TTFT of the requests sent then, served):", "",
           "| tenant | served share | target share | share error | TTFT p50 | TTFT p99 | requests |", "|---|---|---|---|---|---|---|"]
    for n in runs[0]["tenants"]:
        cells = [r["tenants"][n] for r in runs]
        out.append(f"| {n} | {median_line([c['share'] for c in cells], pct)} | {median_line([c['target'] for c in cells], pct)} | "
                   f"{median_line([c['error'] for c in cells], lambda x: f'{x * 100:+.1f}%')} | {median_line([c['p50'] for c in cells], ms)} | "
                   f"{median_line([c['p99'] for c in cells], ms)} | {median_line([c['n'] for c in cells], str)} |")
    out += ["", f"Jain's index over share / target: {median_line([r['jain'] for r in runs], lambda x: f'{x:.4f}')}.", ""]
    return out


def absent(dirs, experiment):
    """The binary's reason for rejecting the experiment's config in the first run that has one, or None."""
    for d in dirs:
        path = os.path.join(d, experiment, "absent.txt")
        if os.path.exists(path):
            return " ".join(" ".join(lines(path)).split())
    return None


def main(argv=None):
    global scale
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+", metavar="dir")
    parser.add_argument("--experiments", default=" ".join(ALL_EXPERIMENTS))
    parser.add_argument("--duration-scale", type=float, default=1.0)
    parser.add_argument("--command", default="perf/admission.sh")
    parser.add_argument("--seconds", type=int, default=None)
    args = parser.parse_args(argv)
    scale = args.duration_scale
    experiments = args.experiments.split()

    def numbers(experiment):
        return fairness_section([tenant_fairness(os.path.join(d, experiment), experiment, *contention_span(experiment)) for d in args.dirs])
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
        out += numbers("fairness")

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
            out += numbers(name)
            continue
        out += ["", "| goal | result | verdict |", "|---|---|---|",
                f"| P0 TTFT p99 ≤ 1.5x unloaded | {median_line(ratio, lambda x: f'{x:.2f}x')} | {'met' if statistics.median(ratio) <= 1.5 else 'missed'} |",
                f"| P4 served, max wait ≤ 10x mean service time | {median_line(wait, lambda x: f'{x:.1f}x')} (P4 TTFT, which includes its queue wait) | {'met' if statistics.median(wait) <= 10 and all(r['p4_ok'] > 0 for r in runs) else 'missed'} |", ""]
        out += numbers(name)

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
        out += numbers("shapes")

    if "three-shapes" in experiments:
        runs = [three_shapes(os.path.join(d, "three-shapes")) for d in args.dirs]
        out += ["## Three shapes: weights 70/20/10, long, medium and short requests, backlogged (fairshare)", ""]
        names = list(runs[0]["windows"][0]["shares"])
        for i, run in enumerate(runs):
            out += [f"Run {i + 1}: {run['requests']} requests, {run['ok']} served, {run['refused']} refused with 503 (the overload).", "",
                    "| window | " + " | ".join(names) + " | Jain | weighted tok/s |", "|---|" + "---|" * (len(names) + 2)]
            for w in run["windows"]:
                label = w["window"] if w["goal"] else f"{w['window']} (settling; not a goal window)"
                cells = [f"{pct(w['shares'][n])} (target {pct(w['targets'][n])}, {w['errors'][n] * 100:+.1f}%)" for n in names]
                out.append(f"| {label} | " + " | ".join(cells) + f" | {w['jain']:.4f} | {w['tokens_per_s']:.0f} |")
            out.append("")
        worst = [r["worst_error"] for r in runs]
        out += ["| goal | result | verdict |", "|---|---|---|",
                f"| each tenant within ±5% of its share in every 30 s window after the first 10 s | worst {median_line(worst, pct)} | {'met' if statistics.median(worst) <= SHARE_TOLERANCE else 'missed'} |", ""]
        out += numbers("three-shapes")

    if "late-arrival" in experiments:
        runs = [late_arrival(os.path.join(d, "late-arrival")) for d in args.dirs]
        target = runs[0]["target"]
        out += [f"## Late arrival: two equal tenants backlogged, a third joins at {LATE_JOIN:.0f} s (fairshare)", "",
                "Each request's weighted tokens are spread evenly from its first token to its last byte, so that 1 s and 2 s windows see service as it happens.", "",
                "| run | requests (served, refused) | 2 s windows after joining: late's share | first 2 s window at its share ±5% ends | share from +10 s to the end | max 1 s window | max 2 s window |",
                "|---|---|---|---|---|---|---|"]
        for i, r in enumerate(runs):
            first = ", ".join(pct(share) for _, share in r["windows_2s"][:8])
            out.append(f"| {i + 1} | {r['requests']} ({r['ok']}, {r['refused']}) | {first}, ... | +{r['reached']:.1f} s | {pct(r['after_share'])} | {pct(r['max_1s'])} | {pct(r['max_2s'])} |")
        reached = [r["reached"] for r in runs]
        after = [r["after_share"] / target - 1 for r in runs]
        burst = [r["max_2s"] / target - 1 for r in runs]
        burst1 = [r["max_1s"] / target - 1 for r in runs]
        floor = [r["others_2s"] for r in runs]
        floor1 = [r["others_1s"] for r in runs]
        out += ["", "| goal | result | verdict |", "|---|---|---|",
                f"| its share (target {pct(target)}) within {LATE_WITHIN:.0f} s of joining, ±5% | first window at it ends {median_line(reached, lambda x: f'+{x:.1f} s')}; from +{LATE_WITHIN:.0f} s to the end {median_line(after, lambda x: f'{x * 100:+.1f}%')} | {'met' if statistics.median(reached) <= LATE_WITHIN and abs(statistics.median(after)) <= SHARE_TOLERANCE else 'missed'} |",
                f"| no burst: every 2 s window after joining ≤ its share + 5% | largest {median_line(burst, lambda x: f'{x * 100:+.1f}%')} (1 s windows: {median_line(burst1, lambda x: f'{x * 100:+.1f}%')}); the early tenants' own largest in the same windows: {median_line(floor, lambda x: f'{x * 100:+.1f}%')} (1 s: {median_line(floor1, lambda x: f'{x * 100:+.1f}%')}) | {'met' if statistics.median(burst) <= SHARE_TOLERANCE else 'missed'} |", ""]
        out += numbers("late-arrival")

    for name in ("degradation", "degradation-off", "degradation-lone", "degradation-full", "degradation-full-off", "degradation-full-lone"):
        if name not in experiments:
            continue
        kind = name.removeprefix("degradation").removeprefix("-full").removeprefix("-") or "on"
        title = {"on": "with per-class protection", "off": "without protection (to compare)",
                 "lone": "enterprise alone, without protection (its floor on the same fleet)"}[kind]
        point = "a full fleet (free's prefills ~85% of each engine)" if "-full" in name else "a busy fleet"
        out += [f"## Degradation {title}, {point}: one of 4 workers fails 50%, then all 4 compute 5x slower (priority)", ""]
        reason = absent(args.dirs, name)
        if reason:
            out += [f"Feature absent: the binary rejects the config ({reason}).", ""]
            continue
        runs = [degradation(os.path.join(d, name), name) for d in args.dirs]
        out += ["| run | phase | span | enterprise TTFT p50 / p95 (served of sent) | premium p50 / p95 (served of sent, 503) | free p50 / p95 (served of sent, 503) | shed (ledger): enterprise / premium / free | client errors (not 503): e / p / f | protection shedding (share of samples) |",
                "|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(runs):
            for phase, v in r["phases"].items():
                c = v["classes"]
                cells = [f"{ms(c[n]['p50'])} / {ms(c[n]['p95'])} ({c[n]['ok']} of {c[n]['sent']}" + (f", {c[n]['refused']})" if n != "enterprise" else ")") for n in ("enterprise", "premium", "free")]
                cells.append("no ledger" if v["shed"] is None else " / ".join(str(v["shed"][n]) for n in ("enterprise", "premium", "free")))
                cells.append(" / ".join(str(c[n]["failed"]) for n in ("enterprise", "premium", "free")))
                shed = "none in the binary" if v["shedding"] is None else ", ".join(f"{n} {pct(x)}" for n, x in v["shedding"].items())
                out.append(f"| {i + 1} | {phase} | {v['span'][0]:.0f}-{v['span'][1]:.0f} s | " + " | ".join(cells) + f" | {shed} |")
        out.append("")
        if kind == "on":
            worst = [max(r["ratios"]["errors"], r["ratios"]["slow"]) for r in runs]
            learned = [r["phases"]["slow"]["classes"]["enterprise"]["p95"] / (DEGRADE_TOLERANCE * r["learned"]) for r in runs if r["learned"]]
            # Free is to be shed where the fleet degrades as clients see it: the slow phase. In the errors
            # phase the retries hide sim-0's 500s from clients; shedding there is shown, not a goal.
            free_shed = [(r["phases"]["slow"]["shedding"] or {}).get("free", 0) for r in runs]
            errors_shed = [sum((r["phases"]["errors"]["shed"] or {}).values()) for r in runs]
            errors_failed = [sum(c["failed"] for c in r["phases"]["errors"]["classes"].values()) for r in runs]
            detected = [r["detected"] for r in runs]
            out += ["Shed after the slowdown (from the first /api/queues sample showing it; 0.0: already shed): " + "; ".join(
                f"run {i + 1}: " + ", ".join(f"{n} " + ("never" if d[n] is None else f"{d[n]:.1f} s") for n in ("free", "premium")) for i, d in enumerate(detected)), ""]
            out += ["| goal | result | verdict |", "|---|---|---|",
                    f"| enterprise TTFT p95 within {DEGRADE_TOLERANCE:.0f}x its healthy value in every phase | worst phase {median_line(worst, lambda x: f'{x:.2f}x')} | {'met' if statistics.median(worst) <= DEGRADE_TOLERANCE else 'missed'} |",
                    f"| the same against the gateway's learned enterprise baseline: slow-phase p95 / ({DEGRADE_TOLERANCE:.0f}x the baseline at the slowdown) | " + (f"{median_line(learned, lambda x: f'{x:.2f}')} (baseline {median_line([r['learned'] for r in runs if r['learned']], ms)}) | {'met' if statistics.median(learned) <= 1 else 'missed'} |" if learned else "no baseline in /api/queues | |"),
                    f"| free shed while the fleet is degraded | free shed in {median_line(free_shed, pct)} of the slow phase's samples; shed in all: {median_line([r['shed_total']['free'] for r in runs], lambda x: f'{x:.0f}')} | {'met' if statistics.median(free_shed) > 0 else 'missed'} |",
                    f"| (not a goal: the errors phase, which retries hide from clients) | client errors {median_line(errors_failed, lambda x: f'{x:.0f}')}; requests shed {median_line(errors_shed, lambda x: f'{x:.0f}')} | |", ""]
        elif kind == "off":
            out += [f"For comparison, not a goal: enterprise TTFT p95 in the worst phase {median_line([max(r['ratios']['errors'], r['ratios']['slow']) for r in runs], lambda x: f'{x:.2f}x')} its healthy value.", ""]
        if kind != "lone":  # one tenant: no fairness to tell
            out += numbers(name)

    preemption_runs = [
        ("preemption", "preemption-off", "Preemption before the first byte: enterprise on a fleet full of free requests in prefill (priority)"),
        ("preemption-cluster", "preemption-cluster-off", "Preemption across replicas: free requests on replica A fill the fleet, enterprise arrives on replica B (priority, [cluster])"),
    ]
    for on, off, title in preemption_runs:
        if on not in experiments and off not in experiments:
            continue
        out += [f"## {title}", ""]
        reasons = {n: absent(args.dirs, n) for n in (on, off) if n in experiments}
        out += [f"Feature absent ({n}): the binary rejects the config ({why})." for n, why in reasons.items() if why] + [""]
        table = {n: [preemption(os.path.join(d, n)) for d in args.dirs] for n, why in reasons.items() if not why}
        if table:
            out += ["| run | experiment | enterprise TTFT p50 / p90 (served) | enterprise errors | free served of sent (503, other errors) | preemptions |", "|---|---|---|---|---|---|"]
            for i in range(len(args.dirs)):
                for n, runs in table.items():
                    r = runs[i]
                    out.append(f"| {i + 1} | {n} | {ms(r['p50'])} / {ms(r['p90'])} ({r['n']}) | {r['enterprise_errors']} | {r['free_ok']} of {r['free_sent']} ({r['free_refused']}, {r['free_failed']}) | {r['preemptions']:.0f} |")
            out.append("")
            if len(table) == 2:
                ratio = [a["p90"] / b["p90"] for a, b in zip(table[on], table[off])]
                out += ["| goal | result | verdict |", "|---|---|---|",
                        f"| enterprise TTFT p90 with preemption ≤ {PREEMPT_GOAL}x without | {median_line(ratio, lambda x: f'{x:.2f}x')} | {'met' if statistics.median(ratio) <= PREEMPT_GOAL else 'missed'} |", ""]
            for n in table:
                out += [f"{n}:", ""] + numbers(n)

    return "\n".join(out)


if __name__ == "__main__":
    print(main())
