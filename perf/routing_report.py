#!/usr/bin/env python3
"""Summary for perf/routing.sh: python3 perf/routing_report.py DIR [DIR...] [--strategies "a b"] [--workloads "x y"]

Reads, for every strategy and workload that ran:
  DIR/<strategy>/routing-<workload>.json      the aotproxy-load report (latencies in microseconds)
  DIR/<strategy>/<workload>.workers.json      each simulated worker's /sim/stats after the run
  DIR/<strategy>/<workload>.gateway.log       the gateway's log: did it run the strategy, or round robin?
  DIR/<strategy>/<workload>.gateway-metrics.txt   the gateway's /metrics (breaker failures, push-backs)
  DIR/<strategy>/<workload>.breakers.json     the gateway's /api/circuit-breaker/stats (times each opened)
  DIR/<strategy>/<workload>.skipped           why routing.sh could not run it on this binary
and writes Markdown on stdout: one table per workload, then the routing goals with their ratios.
With several DIRs (repeated full runs), every figure is the median over the runs, error rates, shed
counts, 503s and breaker trips are the worst run's, and each goal's value is the median of the per-run
ratios (each run compares strategies measured minutes apart on the same machine), with every run's
ratio beside it.

python3 -m unittest discover -s perf -p 'routing_report_test.py' tests it.
"""
import argparse
import json
import os
import re
import statistics
import sys

ALL_STRATEGIES = ["round_robin", "weighted_round_robin", "least_queue", "least_connections", "p2c_kv", "consistent_hash", "adaptive"]
ALL_WORKLOADS = ["shared-prefix", "no-reuse", "load-90", "cache-pressure", "multi-turn", "push-back", "lora"]
TITLES = {
    "shared-prefix": "(a) shared prefix: 16 system prompts of ~2,000 tokens, unique user messages, 13/s (80%)",
    "no-reuse": "(b) no reuse: unique ~2,100-token prompts, 13/s (80%)",
    "load-90": "shedding check: unique prompts ramping 8 -> 14.6/s (90%), then holding",
    "cache-pressure": "(c) prefixes outnumber the cache: 16 prefixes of ~1,500 tokens, ~4 fit a worker, 13.4/s (90%)",
    "multi-turn": "(d) multi-turn: 64 conversations, ~200 new tokens a turn plus the previous answer, x-session-id",
    "push-back": "(e) push-back: bursts of 24 into workers that hold 10, 10, 5, 5 (vLLM's queue cap), gateway slots 8 each",
    "lora": "(f) LoRA: 8 adapters (uniform), 4 workers with 2 adapter slots each, 8/s",
}
# The columns each workload's goals need, beside the ones every table has.
EXTRA_COLUMNS = {
    "push-back": [("503s to clients", "client_503", "worst"), ("breaker trips", "trips", "worst"),
                  ("breaker failures", "breaker_failures", "worst"), ("push-backs", "push_backs", "median")],
    "lora": [("adapter loads / 100 req", "loads_per_100", "median")],
}
# What today's gateway logs when it accepts a strategy name but routes round robin.
NOT_BUILT = "is accepted but not built yet"


def read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def read_text(path):
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def metric_sum(text, name):
    """The sum of every sample of a Prometheus counter or gauge, or None when it is absent."""
    values = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+(\S+)\s*$", text, re.M)]
    return sum(values) if values else None


def load(directory, strategy, workload):
    base = os.path.join(directory, strategy)
    skipped = os.path.join(base, f"{workload}.skipped")
    if os.path.exists(skipped):
        return {"skipped": read_text(skipped).strip()}
    path = os.path.join(base, f"routing-{workload}.json")
    if not os.path.exists(path):
        return None
    whole = read_json(path, None)["scenarios"][0]
    all_workers = read_json(os.path.join(base, f"{workload}.workers.json"), [])
    workers = [w for w in all_workers if w]
    log = read_text(os.path.join(base, f"{workload}.gateway.log"))
    metrics = read_text(os.path.join(base, f"{workload}.gateway-metrics.txt"))
    breakers = read_json(os.path.join(base, f"{workload}.breakers.json"), None)
    codes = whole.get("status_codes", {})
    hits = sum(w.get("prefix_cache_hits", 0) for w in workers)
    queries = sum(w.get("prefix_cache_queries", 0) for w in workers)
    loads = [w["lora_loads"] for w in workers if "lora_loads" in w]
    failures = metric_sum(metrics, "llm_circuit_breaker_failures_total")
    return {
        "requests": whole["requests"],
        "ttft": whole["ttft_us"],
        "latency": whole["latency_us"],
        "tok_s": whole.get("output_tokens_per_s"),
        "error_rate": whole.get("error_rate", 0.0),
        "shed": int(codes.get("429", 0)) + int(codes.get("503", 0)),
        "client_503": int(codes.get("503", 0)),
        "max_lag_us": whole.get("max_schedule_lag_us", 0),
        "hit": hits / queries if queries else None,
        "loads_per_100": 100.0 * sum(loads) / whole["requests"] if loads and whole["requests"] else None,
        "trips": sum(b.get("times_opened", 0) for b in breakers) if breakers is not None else None,
        "breaker_failures": None if failures is None else int(failures),
        "push_backs": None if (p := metric_sum(metrics, "llm_worker_push_backs_total")) is None else int(p),
        "per_worker": [w.get("requests_total", 0) if w else None for w in all_workers],
        "as_rr": strategy != "round_robin" and NOT_BUILT in log,
    }


def ms(us):
    return "–" if us is None else f"{us / 1000:,.0f}" if us >= 100_000 else f"{us / 1000:,.1f}"


def pct(fraction, digits=1):
    return "–" if fraction is None else f"{fraction * 100:.{digits}f}%"


def number(value):
    return "–" if value is None else f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def table(header, rows, align=None):
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def med(values):
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def worst(values):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def median_of(runs):
    """One result from several runs of the same strategy and workload: medians, worst errors."""
    skipped = [r for r in runs if r and "skipped" in r]
    runs = [r for r in runs if r and "skipped" not in r]
    if not runs:
        return skipped[0] if skipped else None
    if len(runs) == 1:
        return runs[0]
    workers = max(len(r["per_worker"]) for r in runs)
    return {
        "requests": int(med([r["requests"] for r in runs])),
        "ttft": {k: med([r["ttft"][k] for r in runs]) for k in ("p50", "p90", "p99")},
        "latency": {"p99": med([r["latency"]["p99"] for r in runs])},
        "tok_s": med([r["tok_s"] for r in runs]),
        "error_rate": max(r["error_rate"] for r in runs),
        "shed": max(r["shed"] for r in runs),
        "client_503": max(r["client_503"] for r in runs),
        "max_lag_us": max(r["max_lag_us"] for r in runs),
        "hit": med([r["hit"] for r in runs]),
        "loads_per_100": med([r["loads_per_100"] for r in runs]),
        "trips": worst([r["trips"] for r in runs]),
        "breaker_failures": worst([r["breaker_failures"] for r in runs]),
        "push_backs": None if (p := med([r["push_backs"] for r in runs])) is None else int(p),
        "per_worker": [None if (m := med([r["per_worker"][i] for r in runs if i < len(r["per_worker"])])) is None else int(m)
                       for i in range(workers)],
        "as_rr": any(r["as_rr"] for r in runs),
    }


class Report:
    def __init__(self, dirs, strategies, workloads):
        self.dirs = dirs
        self.strategies = strategies
        self.workloads = workloads
        self.per_run = [{(s, w): load(d, s, w) for s in strategies for w in workloads} for d in dirs]
        self.results = {(s, w): median_of([run[(s, w)] for run in self.per_run]) for s in strategies for w in workloads}

    def ran(self, strategy, workload):
        r = self.results.get((strategy, workload))
        return r if r and "skipped" not in r else None

    def run_ratio(self, run, workload, a, b, metric, pct_key):
        ra, rb = run.get((a, workload)), run.get((b, workload))
        if not ra or not rb or "skipped" in ra or "skipped" in rb:
            return None
        va = ra[metric][pct_key] if pct_key else ra[metric]
        vb = rb[metric][pct_key] if pct_key else rb[metric]
        return va / vb if va is not None and vb else None

    def ratio(self, workload, a, b, metric, pct_key=None):
        values = [v for v in (self.run_ratio(run, workload, a, b, metric, pct_key) for run in self.per_run) if v is not None]
        if not values:
            return None, f"n/a ({a} or {b} not run on {workload}, or nothing to compare)"
        return statistics.median(values), "" if len(values) == 1 else " (" + ", ".join(f"{v:.2f}" for v in values) + ")"

    def caveat(self, workload, *names):
        rr = [n for n in names if self.ran(n, workload) and self.ran(n, workload)["as_rr"]]
        return f" (but {', '.join(rr)} ran as round robin)" if rr else ""

    def ratio_goal(self, label, workload, a, b, metric, pct_key, test):
        if workload not in self.workloads:
            return [label, "–", f"n/a ({workload} not run)"]
        value, runs = self.ratio(workload, a, b, metric, pct_key)
        verdict = runs if value is None else ("met" if test(value) else "**not met**") + self.caveat(workload, a, b)
        return [label, "–" if value is None else f"{value:.2f}{runs}", verdict]

    def every_strategy_goal(self, label, workload, key, limit):
        """Met when no strategy's (worst-run) value of `key` is above `limit`."""
        ran = [(s, self.ran(s, workload)) for s in self.strategies if self.ran(s, workload)]
        if not ran:
            r = next((self.results.get((s, workload)) for s in self.strategies if self.results.get((s, workload))), None)
            return [label, "–", f"n/a ({workload} skipped: {r['skipped']})" if r else f"n/a ({workload} not run)"]
        unknown = [s for s, r in ran if r[key] is None]
        failing = [s for s, r in ran if r[key] is not None and r[key] > limit]
        worst_s, worst_r = max(ran, key=lambda x: -1 if x[1][key] is None else x[1][key])
        value = f"worst {number(worst_r[key])} ({worst_s})" if worst_r[key] is not None else "–"
        if failing:
            return [label, value, f"**not met**: {', '.join(failing)}"]
        return [label, value, "met" if not unknown else f"n/a for {', '.join(unknown)} (not recorded)"]

    def goals(self):
        lq, rr, p2c = "least_queue", "round_robin", "p2c_kv"
        goals = [
            self.ratio_goal(f"(a) TTFT p90: p2c_kv / {rr} ≤ 0.5", "shared-prefix", p2c, rr, "ttft", "p90", lambda v: v <= 0.5),
            self.ratio_goal(f"(a) TTFT p90: p2c_kv / {lq} ≤ 0.8", "shared-prefix", p2c, lq, "ttft", "p90", lambda v: v <= 0.8),
            self.ratio_goal("(b) TTFT p90: p2c_kv / least_queue within 0.95-1.05", "no-reuse", p2c, lq, "ttft", "p90", lambda v: 0.95 <= v <= 1.05),
        ]
        for label, metric, key in (("e2e p99", "latency", "p99"), ("output tok/s", "tok_s", None)):
            row = self.ratio_goal(f"(b) context: {label}, p2c_kv / least_queue", "no-reuse", p2c, lq, metric, key, lambda v: True)
            row[2] = "(not a goal)" if row[1] != "–" else row[2]
            goals.append(row)
        goals.append(self.every_strategy_goal("load-90: every strategy's error rate ≤ 1%", "load-90", "error_rate", 0.01))
        if goals[-1][1].startswith("worst"):
            s = goals[-1][1].split("(")[-1].rstrip(")")
            goals[-1][1] = f"worst {pct(self.ran(s, 'load-90')['error_rate'], 2)} ({s})"
        goals += [
            self.ratio_goal(f"(c) TTFT p90: p2c_kv / {rr} ≤ 0.5", "cache-pressure", p2c, rr, "ttft", "p90", lambda v: v <= 0.5),
            self.ratio_goal(f"(c) TTFT p90: p2c_kv / {lq} ≤ 0.7", "cache-pressure", p2c, lq, "ttft", "p90", lambda v: v <= 0.7),
            self.ratio_goal(f"(c) cache hit rate: p2c_kv / {lq} ≥ 1.5", "cache-pressure", p2c, lq, "hit", None, lambda v: v >= 1.5),
            self.ratio_goal(f"(d) TTFT p90: p2c_kv / {lq} ≤ 0.6", "multi-turn", p2c, lq, "ttft", "p90", lambda v: v <= 0.6),
            self.ratio_goal(f"(d) cache hit rate: p2c_kv / {lq} ≥ 2", "multi-turn", p2c, lq, "hit", None, lambda v: v >= 2),
            self.every_strategy_goal("(e) no 503 reaches a client (the fleet had room), every strategy", "push-back", "client_503", 0),
            self.every_strategy_goal("(e) no breaker trip, every strategy", "push-back", "trips", 0),
            # Nothing else fails in this workload: any failure a breaker counted was a push-back.
            self.every_strategy_goal("(e) no push-back counted as a breaker failure, every strategy", "push-back", "breaker_failures", 0),
            self.ratio_goal(f"(f) adapter loads per 100 requests: p2c_kv / {lq} ≤ 0.5", "lora", p2c, lq, "loads_per_100", None, lambda v: v <= 0.5),
            self.ratio_goal(f"(f) TTFT p90: p2c_kv / {lq} ≤ 1 (no worse)", "lora", p2c, lq, "ttft", "p90", lambda v: v <= 1.0),
        ]
        return goals

    def workload_table(self, w):
        extra = EXTRA_COLUMNS.get(w, [])
        rows = []
        for s in self.strategies:
            r = self.results[(s, w)]
            if r is None or "skipped" in r:
                rows.append([s] + ["not run" if r is None else f"skipped: {r['skipped']}"] + [""] * (9 + len(extra)))
                continue
            name = f"{s} (ran as round_robin)" if r["as_rr"] else s
            t, l = r["ttft"], r["latency"]
            per_worker = " / ".join("–" if n is None else str(n) for n in r["per_worker"])
            # A few sends 1-5 ms late are noise beside TTFTs of 100 ms and more; 10 ms is not.
            late = f" (runner lagged up to {r['max_lag_us'] / 1000:,.0f} ms)" if r["max_lag_us"] > 10_000 else ""
            rows.append([name, f"{r['requests']}{late}", ms(t["p50"]), ms(t["p90"]), ms(t["p99"]), ms(l["p99"]),
                         "–" if r["tok_s"] is None else f"{r['tok_s']:,.0f}", pct(r["error_rate"], 2), r["shed"],
                         pct(r["hit"], 0)] + [number(r[key]) for _, key, _ in extra] + [per_worker])
        return table(["strategy", "requests", "TTFT p50 (ms)", "TTFT p90", "TTFT p99", "e2e p99", "output tok/s",
                      "error rate", "shed", "cache hit"] + [title for title, _, _ in extra] + ["requests per worker (sim-0/1/2/3)"], rows)


def render(dirs, strategies, workloads, command, seconds=None):
    report = Report(dirs, strategies, workloads)
    out = []
    say = out.append
    say("# Routing quality: strategies on a heterogeneous simulated fleet\n")
    say(f"- Command: `{command}`" + (f", {seconds} s in all" if seconds is not None else ""))
    if len(dirs) > 1:
        say(f"- **Median of {len(dirs)} runs** ({', '.join(os.path.basename(d.rstrip('/')) for d in dirs)}); error rates, shed "
            "counts, 503s and breaker trips are the worst run's; each goal's value is the median of the per-run ratios, every "
            "run's ratio in brackets.")
    say("- Fleet: 4 `aotproxy simulate` workers, sim-0 and sim-1 at full speed, sim-2 and sim-3 at `--speed 0.5`; by default "
        "each `--max-num-seqs 16 --num-gpu-blocks 1024 --block-size 16` (KV for ~7 requests of ~2,100 tokens; the prefix cache "
        "holds 4-8 of the 16 shared prompts). Gateway weights 2, 2, 1, 1; `max_concurrency = 16`. Capacity without cache "
        "hits: ~16.2 req/s (perf/profiles/routing-shared-prefix.toml has the derivation). cache-pressure: `--num-gpu-blocks 512` "
        "(~14.9 req/s); multi-turn: `--num-gpu-blocks 2048`; push-back: `--max-num-seqs 8` + 2 queued (sim-0/1), 4 + 1 "
        "(sim-2/3), `max_concurrency = 8`; lora: `--lora-modules` (8 adapters) `--max-loras 2`, models "
        f"{'discovered' if '--lora-models discovered' in command else 'configured (the base model and the adapters)'} "
        "(perf/routing.sh, worker_flags, models_line).")
    say("- Workers and gateway restart for every run: cold caches, and the same seeded request sequence for every strategy.")
    say("- TTFT: intended send -> first content token; e2e: intended send -> last byte (open loop, so queueing counts; a "
        "multi-turn turn also waits for its conversation's previous turn). Output tok/s: completion tokens per second of the "
        "run. Cache hit: prompt tokens served from the workers' prefix caches. Shed: 429 + 503 answers. Breaker trips: times a "
        "worker's breaker opened (/api/circuit-breaker/stats); push-backs: `llm_worker_push_backs_total` (– before resil19). "
        "Adapter loads: the workers' `lora_loads` per 100 requests.")
    if "--quick" in command or "--duration-scale" in command:
        say("- **Shortened runs**: with ~130 requests per run, TTFT p90 is noisy (two identical "
            "round-robin configs measured 297 and 535 ms in one quick run); judge the goals on full runs.")
    ran_as_rr = sorted({s for (s, w), r in report.results.items() if r and r.get("as_rr")})
    if ran_as_rr:
        say(f"- **Not measured as named:** the gateway logged that {', '.join(ran_as_rr)} "
            "is accepted but not built yet; those rows are round robin under another name.")
    say("")
    for w in workloads:
        say(f"## {TITLES[w]}\n")
        say(report.workload_table(w))
        say("")
    say("## Goals\n")
    say(table(["goal", "value", "verdict"], report.goals(), "lrl"))
    say("")
    say("Per-run reports (Markdown and JSON), the gateway's config, logs, /metrics and breaker stats, and each worker's "
        "/sim/stats are next to this file, one folder per strategy.")
    return "\n".join(out)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+", metavar="dir")
    parser.add_argument("--strategies", default=" ".join(ALL_STRATEGIES))
    parser.add_argument("--workloads", default=" ".join(ALL_WORKLOADS))
    parser.add_argument("--command", default="perf/routing.sh")
    parser.add_argument("--seconds", type=int, default=None)
    args = parser.parse_args(argv)
    workloads = args.workloads.split()
    unknown = [w for w in workloads if w not in ALL_WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; use: {' '.join(ALL_WORKLOADS)}")
    return render(args.dirs, args.strategies.split(), workloads, args.command, args.seconds)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
